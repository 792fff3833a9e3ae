"""Pure building blocks every service's domain shares (standard library only)."""
