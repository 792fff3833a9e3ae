"""The orders service: places orders across accounts and catalog, safely under retries and crashes."""
