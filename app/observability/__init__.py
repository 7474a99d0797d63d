"""What the service tells its operators: Prometheus metrics (`GET /metrics`),
one log line per request and per security event (text or JSON), and request ids."""
