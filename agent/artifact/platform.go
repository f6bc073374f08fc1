package artifact

import (
	"bytes"
	"debug/buildinfo"
	"debug/elf"
	"fmt"
	"io"
	"os"
	"strconv"
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
		if lvl := armArchLevel(ef); lvl > 0 && strconv.Itoa(lvl) > p.ARM {
			return fmt.Errorf("%w: binary needs ARMv%d (its .ARM.attributes say so), this machine is ARMv%s; build it for ARMv%s (e.g. Raspberry Pi OS armhf, or -march=armv%s) or upload a .%s-armv%s variant",
				ErrWrongArch, lvl, p.ARM, p.ARM, p.ARM, p.OS, p.ARM)
		}
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

// armArchLevel reads Tag_CPU_arch from the .ARM.attributes section that C
// toolchains write into ARM binaries (the "aeabi" public attributes of the
// whole file, ARM IHI 0045): the ARM architecture level the code needs, 5,
// 6 or 7, or 0 when the section is absent or unreadable (Go binaries have
// none; their GOARM is in the build info instead). This catches a Debian
// armhf binary (ARMv7) on a Pi Zero (ARMv6), which would die of SIGILL.
func armArchLevel(ef *elf.File) int {
	sec := ef.Section(".ARM.attributes")
	if sec == nil || sec.Size > 1<<16 || sec.Type == elf.SHT_NOBITS {
		return 0
	}
	b, err := sec.Data()
	if err != nil || len(b) < 1 || b[0] != 'A' {
		return 0
	}
	bo := ef.ByteOrder
	for b = b[1:]; len(b) >= 4; {
		n := bo.Uint32(b)
		if n < 4 || uint64(n) > uint64(len(b)) {
			return 0
		}
		sub := b[4:n]
		b = b[n:]
		i := bytes.IndexByte(sub, 0)
		if i < 0 || string(sub[:i]) != "aeabi" {
			continue
		}
		for sub = sub[i+1:]; len(sub) >= 5; {
			tag, size := sub[0], bo.Uint32(sub[1:5])
			if size < 5 || uint64(size) > uint64(len(sub)) {
				return 0
			}
			attrs := sub[5:size]
			sub = sub[size:]
			if tag != 1 { // Tag_File; section and symbol scopes are skipped
				continue
			}
			for len(attrs) > 0 {
				t, k := uleb128(attrs)
				if k == 0 {
					return 0
				}
				attrs = attrs[k:]
				switch {
				case t == 6: // Tag_CPU_arch
					v, k := uleb128(attrs)
					if k == 0 {
						return 0
					}
					return armLevel(v)
				case t == 4 || t == 5 || (t > 32 && t%2 == 1): // NTBS values
					j := bytes.IndexByte(attrs, 0)
					if j < 0 {
						return 0
					}
					attrs = attrs[j+1:]
				case t == 32: // Tag_compatibility: ULEB128 flag, NTBS vendor
					_, k := uleb128(attrs)
					if k == 0 {
						return 0
					}
					j := bytes.IndexByte(attrs[k:], 0)
					if j < 0 {
						return 0
					}
					attrs = attrs[k+j+1:]
				default: // ULEB128 values
					_, k := uleb128(attrs)
					if k == 0 {
						return 0
					}
					attrs = attrs[k:]
				}
			}
		}
	}
	return 0
}

// armLevel maps Tag_CPU_arch to the level compared with the machine's.
// ARMv8 AArch32 code counts as 7: a Pi 3 or 4 on a 32-bit OS reports
// armv7l and runs it.
func armLevel(v uint64) int {
	switch {
	case v <= 5: // pre-v4 .. v5TEJ
		return 5
	case v == 6, v == 7, v == 9, v == 11, v == 12: // v6, v6KZ, v6K, v6-M, v6S-M
		return 6
	default: // v6T2 (Thumb-2), v7, v7E-M, v8 and later
		return 7
	}
}

// uleb128 decodes one unsigned LEB128 number; k is 0 when b ends first
// or the number does not fit.
func uleb128(b []byte) (v uint64, k int) {
	for i, c := range b {
		if i == 9 {
			return 0, 0
		}
		v |= uint64(c&0x7f) << (7 * i)
		if c&0x80 == 0 {
			return v, i + 1
		}
	}
	return 0, 0
}
