package car

// Defaults for Config's zero values.
const (
	DefaultMaxHeaderSize  = 64 << 10
	DefaultMaxSectionSize = 2 << 20
)

// Config limits a Reader. Zero values select the defaults.
type Config struct {
	// MaxHeaderSize bounds the header's length (default 64 KiB).
	MaxHeaderSize int
	// MaxSectionSize bounds one section, CID plus block (default 2 MiB).
	MaxSectionSize int
}

func (c Config) normalize() Config {
	if c.MaxHeaderSize <= 0 {
		c.MaxHeaderSize = DefaultMaxHeaderSize
	}
	if c.MaxSectionSize <= 0 {
		c.MaxSectionSize = DefaultMaxSectionSize
	}
	return c
}
