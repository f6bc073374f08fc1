//go:build !linux

package artifact

// kernelARM is unknown off Linux: Go binaries are then not checked for GOARM.
func kernelARM() string { return "" }
