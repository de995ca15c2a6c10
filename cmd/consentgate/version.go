package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
)

// runVersion prints the module version and the commit the binary was built
// from, as the Go toolchain recorded them (debug.ReadBuildInfo).
func runVersion(_ context.Context, args []string, stdout io.Writer, _ *slog.Logger) error {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	if err := parseFlags(fs, args, stdout, "consentgate version"); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q\nusage: consentgate version", fs.Arg(0))
	}
	_, err := fmt.Fprintln(stdout, versionLine())
	return err
}

// versionLine is "consentgate VERSION (commit REV[, modified], TIME) GO":
// VERSION is the module's (a tag, a pseudo-version, or "(devel)" for a
// build in the source tree); the commit is known when the binary was built
// inside a git checkout.
func versionLine() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "consentgate (no build information: built without module support)"
	}
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	line := "consentgate " + bi.Main.Version
	if rev := settings["vcs.revision"]; rev != "" {
		line += " (commit " + rev
		if settings["vcs.modified"] == "true" {
			line += ", modified"
		}
		if t := settings["vcs.time"]; t != "" {
			line += ", " + t
		}
		line += ")"
	} else {
		line += " (commit unknown: not built from a git checkout)"
	}
	return line + " " + bi.GoVersion
}
