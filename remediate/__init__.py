"""remediate: find and fix edge endpoints that speak old protocols."""
