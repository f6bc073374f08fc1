package artifact

import (
	"bytes"
	"debug/buildinfo"
	"debug/elf"
	"fmt"
	"io"
	"os"
	"strings"
)

// Platform is the machine a Store accepts binaries for, in Go's terms.
type Platform struct {
	OS   string // "linux"
	Arch string // GOARCH: "arm64", "arm", "amd64", ...
	ARM  string // GOARM for Arch "arm": "6" or "7" ("" = unknown)
}

// String is the variant suffix of the platform: "linux-arm64", "linux-armv7".
func (p Platform) String() string {
	if p.Arch == "arm" && p.ARM != "" {
		return p.OS + "-armv" + p.ARM
	}
	return p.OS + "-" + p.Arch
}

type elfTarget struct {
	class   elf.Class
	machine elf.Machine
}

// elfMachines maps the GOARCH values the agent builds for to what their ELF
// binaries say.
var elfMachines = map[string]elfTarget{
	"amd64":   {elf.ELFCLASS64, elf.EM_X86_64},
	"arm64":   {elf.ELFCLASS64, elf.EM_AARCH64},
	"arm":     {elf.ELFCLASS32, elf.EM_ARM},
	"386":     {elf.ELFCLASS32, elf.EM_386},
	"riscv64": {elf.ELFCLASS64, elf.EM_RISCV},
}

// Variants lists the object names Fetch tries for object on p, best first,
// ending with object itself:
//
//	arm64:  NAME_TAG.linux-arm64, NAME_TAG
//	armv7:  NAME_TAG.linux-armv7, NAME_TAG.linux-armv6, NAME_TAG
//	armv6:  NAME_TAG.linux-armv6, NAME_TAG
//	amd64:  NAME_TAG.linux-amd64, NAME_TAG
//
// An ARMv7 CPU runs ARMv6 code, so armv6 is its fallback. An arm64 machine
// never picks an arm32 variant: not every 64-bit ARM core or kernel runs
// AArch32 code (Cortex-A76 and later drop it at EL1, many kernels are built
// without COMPAT), so an operator who wants that uploads a .linux-arm64
// object. The plain object is always last and goes through the same ELF
// check, so a wrong-architecture plain object is still refused.
func Variants(object string, p Platform) []string {
	var out []string
	switch {
	case p.Arch == "arm" && p.ARM == "7":
		out = append(out, object+"."+p.OS+"-armv7", object+"."+p.OS+"-armv6")
	case p.Arch == "arm" && p.ARM == "6":
		out = append(out, object+"."+p.OS+"-armv6")
	case p.Arch == "arm":
		// GOARM unknown: only the oldest ARM code is safe.
		out = append(out, object+"."+p.OS+"-armv6")
	default:
		out = append(out, object+"."+p.String())
	}
	return append(out, object)
}

// Check reads the start of f and refuses what cannot run on p: a #! script
// is accepted; an ELF file must be an executable or PIE for p's class and
// machine, with a Linux or System V ABI; a dynamically linked one must name
// an interpreter that exists here (this is where a soft-float ARM binary on
// a hard-float system, or a glibc binary on a musl system, is caught); a Go
// binary for arm must not need a newer GOARM than p's. Anything else is not
// executable.
func (p Platform) Check(f *os.File) error {
	var head [4]byte
	if _, err := f.ReadAt(head[:], 0); err != nil {
		if err == io.EOF {
			return fmt.Errorf("%w: too short to be a program", ErrNotExecutable)
		}
		return fmt.Errorf("artifact: read header: %w", err)
	}
	if head[0] == '#' && head[1] == '!' {
		return nil
	}
	if !bytes.Equal(head[:], []byte(elf.ELFMAG)) {
		return fmt.Errorf("%w: neither an ELF binary nor a #! script (starts with %q)", ErrNotExecutable, head[:])
	}
	ef, err := elf.NewFile(f)
	if err != nil {
		return fmt.Errorf("%w: unreadable ELF header: %w", ErrNotExecutable, err)
	}
	want, ok := elfMachines[p.Arch]
	if !ok {
		return fmt.Errorf("%w: this machine's architecture %q is not known", ErrWrongArch, p.Arch)
	}
	if ef.Type != elf.ET_EXEC && ef.Type != elf.ET_DYN {
		return fmt.Errorf("%w: ELF type %v is not a program", ErrNotExecutable, ef.Type)
	}
	if ef.Class != want.class || ef.Machine != want.machine {
		return fmt.Errorf("%w: binary is %s %s, this machine (%s) runs %s %s", ErrWrongArch,
			classString(ef.Class), machineString(ef.Machine), p, classString(want.class), machineString(want.machine))
	}
	if ef.OSABI != elf.ELFOSABI_NONE && ef.OSABI != elf.ELFOSABI_LINUX {
		return fmt.Errorf("%w: binary is for %v, not %s", ErrWrongArch, ef.OSABI, p.OS)
	}
	for _, prog := range ef.Progs {
		if prog.Type != elf.PT_INTERP {
			continue
		}
		b := make([]byte, min(prog.Filesz, 4096))
		if _, err := prog.ReadAt(b, 0); err != nil {
			return fmt.Errorf("%w: unreadable interpreter path: %w", ErrNotExecutable, err)
		}
		interp := string(bytes.TrimRight(b, "\x00"))
		if _, err := os.Stat(interp); err != nil {
			return fmt.Errorf("%w: dynamically linked against %s (%s), which this machine does not have; build it statically (CGO_ENABLED=0) or for this system",
				ErrWrongArch, interp, armFloat(f, ef))
		}
	}
	if p.Arch == "arm" && p.ARM != "" {
		if bi, err := buildinfo.Read(f); err == nil {
			for _, s := range bi.Settings {
				if s.Key != "GOARM" {
					continue
				}
				v, _, _ := strings.Cut(s.Value, ",")
				if v > p.ARM {
					return fmt.Errorf("%w: Go binary built with GOARM=%s, this machine is ARMv%s; rebuild with GOARM=%s or upload a .%s-armv%s variant",
						ErrWrongArch, s.Value, p.ARM, p.ARM, p.OS, p.ARM)
				}
			}
		}
	}
	return nil
}

func classString(c elf.Class) string {
	switch c {
	case elf.ELFCLASS32:
		return "32-bit"
	case elf.ELFCLASS64:
		return "64-bit"
	}
	return c.String()
}

func machineString(m elf.Machine) string {
	switch m {
	case elf.EM_ARM:
		return "ARM (arm)"
	case elf.EM_AARCH64:
		return "AArch64 (arm64)"
	case elf.EM_X86_64:
		return "x86-64 (amd64)"
	case elf.EM_386:
		return "x86 (386)"
	case elf.EM_RISCV:
		return "RISC-V (riscv64)"
	}
	return m.String()
}

// armFloat describes the float ABI a 32-bit ARM EABI binary declares in
// e_flags (debug/elf does not expose e_flags; it is at offset 36).
func armFloat(f io.ReaderAt, ef *elf.File) string {
	if ef.Machine != elf.EM_ARM || ef.Class != elf.ELFCLASS32 {
		return machineString(ef.Machine)
	}
	var b [4]byte
	if _, err := f.ReadAt(b[:], 36); err != nil {
		return "ARM"
	}
	flags := ef.ByteOrder.Uint32(b[:])
	switch {
	case flags&0x400 != 0: // EF_ARM_ABI_FLOAT_HARD
		return "ARM hard-float"
	case flags&0x200 != 0: // EF_ARM_ABI_FLOAT_SOFT
		return "ARM soft-float"
	}
	return "ARM"
}
