package main

import (
	"context"
	"io"
	"log/slog"
	"net"

	"github.com/consentgate/consentgate/internal/config"
	"github.com/consentgate/consentgate/internal/server"
)

func runServe(ctx context.Context, args []string, _ io.Writer, log *slog.Logger) error {
	cfg, err := config.ParseServe(args)
	if err != nil {
		return err
	}
	srv, err := server.New(ctx, cfg, log, server.Options{})
	if err != nil {
		return err
	}
	defer srv.Close()
	l, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	log.Info("consentgate listening", "addr", l.Addr().String(), "issuer", cfg.Issuer, "demo", cfg.Demo)
	return srv.Serve(ctx, l)
}
