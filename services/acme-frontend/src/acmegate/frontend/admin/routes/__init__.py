"""The admin API's resources, one module each (thin handlers: parse → one call → render)."""
