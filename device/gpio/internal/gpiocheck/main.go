// Command gpiocheck exercises package gpio against the kernel's gpio-sim
// inside the throw-away VM of scripts/hwsim/run-vm.sh (which exports
// HWSIM_GPIOCHIP and HWSIM_GPIOSYS): line 0 is the button, whose level the
// test sets through gpio-sim's simulated pull, and line 1 the LED, whose
// driven level gpio-sim shows in sim_gpio1/value. It exits 0 when every check
// passes and 1, naming the failed check, otherwise.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/classcap/classcap/device/button"
	"github.com/classcap/classcap/device/gpio"
	"github.com/classcap/classcap/device/led"
)

func main() {
	bias := flag.String("bias", gpio.BiasNone, "button bias to request")
	debounce := flag.Duration("debounce", 0, "kernel debounce to request")
	presses := flag.Int("presses", 3, "press/release cycles")
	vanish := flag.String("vanish", "", "gpio-sim live file: take the chip away and check the errors")
	rgb := flag.String("rgb", "", "gpio-sim configfs directory to create a 3-line chip in for an RGB LED check")
	flag.Parse()
	var err error
	mode := fmt.Sprintf("bias %q, debounce %v", *bias, *debounce)
	switch {
	case *vanish != "":
		mode = "vanishing chip"
		err = checkVanish(*vanish)
	case *rgb != "":
		mode = "RGB LED"
		err = checkRGB(*rgb)
	default:
		err = run(*bias, *debounce, *presses)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "gpiocheck: FAIL (%s): %v\n", mode, err)
		os.Exit(1)
	}
	fmt.Printf("gpiocheck: ok (%s)\n", mode)
}

const (
	buttonLine = 0
	ledLine    = 1
	waitEdge   = 5 * time.Second
)

func run(bias string, debounce time.Duration, presses int) error {
	chip, sys := os.Getenv("HWSIM_GPIOCHIP"), os.Getenv("HWSIM_GPIOSYS")
	if chip == "" || sys == "" {
		return fmt.Errorf("HWSIM_GPIOCHIP and HWSIM_GPIOSYS must be set (run inside scripts/hwsim/run-vm.sh)")
	}
	value := filepath.Join(sys, fmt.Sprintf("sim_gpio%d", ledLine), "value")
	if err := checkButton(chip, sys, bias, debounce, presses); err != nil {
		return err
	}
	if err := checkLED(chip, value); err != nil {
		return err
	}
	return nil
}

func checkButton(chip, sys, bias string, debounce time.Duration, presses int) error {
	pull := filepath.Join(sys, fmt.Sprintf("sim_gpio%d", buttonLine), "pull")
	// A requested bias sets gpio-sim's simulated pull when the line is
	// requested (later writes to the pull file still move the line): start
	// from the opposite level to see that the bias reached the kernel.
	pre := "pull-up" // released: the active-low button idles high
	if bias == gpio.BiasPullUp {
		pre = "pull-down"
	}
	if err := writeFile(pull, pre); err != nil {
		return err
	}
	b, err := gpio.OpenButton(gpio.ButtonConfig{Chip: chip, Line: buttonLine, ActiveLow: true, Bias: bias, Debounce: debounce})
	if err != nil {
		return err
	}
	defer b.Close()
	if bias == gpio.BiasPullUp {
		v, err := os.ReadFile(filepath.Join(sys, fmt.Sprintf("sim_gpio%d", buttonLine), "value"))
		if err != nil {
			return err
		}
		if g(v) != "1" {
			return fmt.Errorf("pull-up requested over a simulated pull-down: line is %s, want 1", g(v))
		}
		fmt.Println("gpiocheck: requested pull-up overrode the simulated pull-down")
	}
	var prev time.Time
	for i := 0; i < presses; i++ {
		for _, press := range []bool{true, false} {
			level := map[bool]string{true: "pull-down", false: "pull-up"}[press]
			before := time.Now()
			if err := writeFile(pull, level); err != nil {
				return err
			}
			e, err := next(b.Edges())
			if err != nil {
				return fmt.Errorf("cycle %d, %s: %w", i, level, err)
			}
			after := time.Now()
			if e.Pressed != press {
				return fmt.Errorf("cycle %d, %s: Pressed = %v, want %v", i, level, e.Pressed, press)
			}
			// The kernel stamps the edge between the sysfs write and our
			// receiving it (plus the debounce period, at most).
			if e.At.Before(before) || e.At.After(after) {
				return fmt.Errorf("cycle %d, %s: edge at %v, outside [%v, %v] (write to receipt)",
					i, level, e.At.Sub(before), time.Duration(0), after.Sub(before))
			}
			if !prev.IsZero() && !e.At.After(prev) {
				return fmt.Errorf("cycle %d, %s: edge time %v not after the previous edge", i, level, e.At.Sub(prev))
			}
			prev = e.At
			fmt.Printf("gpiocheck: %s -> pressed=%v, stamped %v after the write, received %v after\n",
				level, e.Pressed, e.At.Sub(before).Round(time.Microsecond), after.Sub(before).Round(time.Microsecond))
		}
	}
	select {
	case e := <-b.Edges():
		return fmt.Errorf("unexpected extra edge %+v", e)
	default:
	}
	if err := b.Close(); err != nil {
		return fmt.Errorf("close button: %w", err)
	}
	if _, ok := <-b.Edges(); ok {
		return fmt.Errorf("Edges not closed by Close")
	}
	return nil
}

func next(ch <-chan button.Edge) (button.Edge, error) {
	t := time.NewTimer(waitEdge)
	defer t.Stop()
	select {
	case e, ok := <-ch:
		if !ok {
			return e, fmt.Errorf("Edges closed")
		}
		return e, nil
	case <-t.C:
		return button.Edge{}, fmt.Errorf("no edge within %v", waitEdge)
	}
}

func checkLED(chip, value string) error {
	steps := []struct {
		open      bool // (re)open the LED, which drives it off, instead of Set
		activeLow bool
		c         led.Color
		want      string
	}{
		{true, false, led.Off, "0"},
		{false, false, led.On, "1"},
		{false, false, led.Off, "0"},
		{false, false, led.Green, "1"}, // a one-colour LED is lit by any channel
		{true, true, led.Off, "1"},     // reopened active-low: off is high
		{false, true, led.Red, "0"},
		{false, true, led.Off, "1"},
	}
	var l *gpio.LED
	defer func() {
		if l != nil {
			l.Close()
		}
	}()
	for _, s := range steps {
		if s.open {
			if l != nil {
				if err := l.Close(); err != nil {
					return fmt.Errorf("close LED: %w", err)
				}
			}
			var err error
			if l, err = gpio.OpenLED(gpio.LEDConfig{Chip: chip, Lines: []int{ledLine}, ActiveLow: s.activeLow}); err != nil {
				return err
			}
			if !l.Mono() {
				return fmt.Errorf("one-line LED: Mono() = false")
			}
		} else if err := l.Set(s.c); err != nil {
			return err
		}
		got, err := os.ReadFile(value)
		if err != nil {
			return err
		}
		if g := strings.TrimSpace(string(got)); g != s.want {
			return fmt.Errorf("LED active-low=%v open=%v %v: sim value %s, want %s", s.activeLow, s.open, s.c, g, s.want)
		}
		fmt.Printf("gpiocheck: LED active-low=%v open=%v %v -> line %s\n", s.activeLow, s.open, s.c, g(got))
	}
	return nil
}

func g(b []byte) string { return strings.TrimSpace(string(b)) }

// checkVanish takes the simulated chip away (live = 0) under an open LED and
// checks that Set fails and that opening the chip again fails clearly.
func checkVanish(live string) error {
	chip := os.Getenv("HWSIM_GPIOCHIP")
	l, err := gpio.OpenLED(gpio.LEDConfig{Chip: chip, Lines: []int{ledLine}})
	if err != nil {
		return err
	}
	defer l.Close()
	if err := writeFile(live, "0"); err != nil {
		return err
	}
	err = l.Set(led.On)
	if err == nil {
		return fmt.Errorf("LED.Set on a vanished chip: no error")
	}
	fmt.Printf("gpiocheck: LED.Set after the chip vanished: %v\n", err)
	_, err = gpio.OpenButton(gpio.ButtonConfig{Chip: chip, Line: buttonLine, ActiveLow: true})
	if err == nil || !strings.Contains(err.Error(), "not found") {
		return fmt.Errorf("OpenButton on a vanished chip: err = %v, want a not-found error", err)
	}
	fmt.Printf("gpiocheck: OpenButton after the chip vanished: %v\n", err)
	return nil
}

// checkRGB creates a gpio-sim chip with three lines under the configfs
// directory dir and drives an RGB LED on them, active-high and active-low.
func checkRGB(dir string) error {
	bank := filepath.Join(dir, "bank0")
	for _, d := range []string{dir, bank} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return fmt.Errorf("gpio-sim: %w", err)
		}
	}
	if err := writeFile(filepath.Join(bank, "num_lines"), "3"); err != nil {
		return err
	}
	if err := writeFile(filepath.Join(dir, "live"), "1"); err != nil {
		return err
	}
	devName, err := os.ReadFile(filepath.Join(dir, "dev_name"))
	if err != nil {
		return err
	}
	chipName, err := os.ReadFile(filepath.Join(bank, "chip_name"))
	if err != nil {
		return err
	}
	chip := g(chipName)
	sys := filepath.Join("/sys/devices/platform", g(devName), chip)
	read := func() (string, error) {
		var v []byte
		for i := 0; i < 3; i++ {
			b, err := os.ReadFile(filepath.Join(sys, fmt.Sprintf("sim_gpio%d", i), "value"))
			if err != nil {
				return "", err
			}
			v = append(v, g(b)...)
		}
		return string(v), nil
	}
	for _, activeLow := range []bool{false, true} {
		l, err := gpio.OpenLED(gpio.LEDConfig{Chip: chip, Lines: []int{0, 1, 2}, ActiveLow: activeLow})
		if err != nil {
			return err
		}
		if l.Mono() {
			l.Close()
			return fmt.Errorf("three-line LED: Mono() = true")
		}
		// The first step checks that OpenLED drives the lines off.
		for i, c := range []led.Color{led.Off, led.Red, led.Green, led.Blue, led.Yellow, led.Cyan, led.Purple, led.White, led.Off} {
			if i > 0 {
				if err := l.Set(c); err != nil {
					l.Close()
					return err
				}
			}
			got, err := read()
			if err != nil {
				l.Close()
				return err
			}
			want := ""
			for _, on := range []bool{c.R, c.G, c.B} {
				want += map[bool]string{true: "1", false: "0"}[on != activeLow]
			}
			if got != want {
				l.Close()
				return fmt.Errorf("RGB LED active-low=%v %v: lines r,g,b = %s, want %s", activeLow, c, got, want)
			}
			fmt.Printf("gpiocheck: RGB LED active-low=%v %v -> lines %s\n", activeLow, c, got)
		}
		if err := l.Close(); err != nil {
			return err
		}
	}
	return nil
}

func writeFile(path, s string) error {
	if err := os.WriteFile(path, []byte(s), 0); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
