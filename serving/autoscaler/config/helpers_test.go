package config

// configOrDefaults is a table case's config: *c, or Defaults() where the case sets none.
func configOrDefaults(c *Config) Config {
	if c == nil {
		return Defaults()
	}
	return *c
}
