package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"

	"github.com/consentgate/consentgate/internal/config"
	"github.com/consentgate/consentgate/internal/server"
)

const serveUsage = "consentgate serve [--demo] [--addr :8080] [--db URL] [--issuer URL] [--purpose-policy FILE] [--read-db URL]… [--read-db-max-lag 2s]"

func runServe(ctx context.Context, args []string, stdout io.Writer, log *slog.Logger) error {
	cfg, err := config.ParseServe(args)
	var help *config.HelpError
	switch {
	case errors.As(err, &help):
		return printHelp(stdout, "usage: "+serveUsage+"\n\nflags:\n"+strings.TrimSuffix(help.Text, "\n"))
	case err != nil && cfg == nil:
		return usagef("%v\nusage: %s\n(--help lists the flags)", err, serveUsage)
	case err != nil:
		return err
	}
	gc := server.TuneGC()
	srv, err := server.New(ctx, cfg, log, server.Options{})
	if err != nil {
		return err
	}
	defer srv.Close()
	l, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	log.Info("consentgate listening", "addr", l.Addr().String(), "issuer", cfg.Issuer, "demo", cfg.Demo, "gc_percent", gc)
	return srv.Serve(ctx, l)
}
