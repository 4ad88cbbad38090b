"""Read side: each provider discovers endpoints and re-reads them; none of them writes."""
