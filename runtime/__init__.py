"""Generic service runtime shared by every service and the edge."""
