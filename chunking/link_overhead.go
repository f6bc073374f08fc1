package chunking

// Overhead is the number of bytes each frame spends on header and tag, so
// callers can tell how many frames a message takes.
func (l *Link) Overhead() int { return l.e.Overhead() }
