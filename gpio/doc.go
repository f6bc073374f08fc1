// Package gpio opens the Raspberry Pi pins nexfield uses (radio RESET and
// DIO0 lines, the status LED) by name through periph.io's registry, and
// drives a status LED (ready, fault, link activity) for the relay and the
// peer (`--led PIN`).
//
// On current Raspberry Pi OS kernels periph.io reaches the pins through the
// GPIO character device (/dev/gpiochip*, its ioctl-gpio driver); on a Pi 5
// the header is on the RP1 chip, which that same path handles, so the
// daemon needs no /dev/mem or /dev/gpiomem access. On machines without GPIO
// (CI, laptops) InitHost succeeds and Open reports the missing pin by name.
package gpio
