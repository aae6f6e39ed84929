// Package pionlog routes the logs of pion (WebRTC, ICE, DTLS, SCTP) to a
// *slog.Logger, so they go wherever the rest of a part's logs go, with the
// part's attributes.
//
//	var se webrtc.SettingEngine
//	se.LoggerFactory = pionlog.New(log)
//
// Each pion logger adds the attribute "pion" with its scope ("ice",
// "dtls", "sctp", "pc", ...). Levels map as follows:
//
//	pion trace, debug, info  → slog Debug
//	pion warn                → slog Warn
//	pion error               → slog Error
//
// Pion logs at info the life of every peer connection (ICE and DTLS state
// changes): on a node serving many browsers that is detail, not news, so
// it goes to Debug with pion's debug and trace. A message is formatted
// only when the logger is enabled for its level.
package pionlog

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/pion/logging"
)

// Factory is a pion logging.LoggerFactory writing to a *slog.Logger.
type Factory struct {
	log *slog.Logger
}

var (
	_ logging.LoggerFactory = (*Factory)(nil)
	_ logging.LeveledLogger = (*logger)(nil)
)

// New returns a Factory whose loggers write to log (slog.Default() when
// log is nil).
func New(log *slog.Logger) *Factory {
	if log == nil {
		log = slog.Default()
	}
	return &Factory{log: log}
}

// NewLogger implements logging.LoggerFactory.
func (f *Factory) NewLogger(scope string) logging.LeveledLogger {
	return &logger{log: f.log.With("pion", scope)}
}

// logger is one pion scope's logger.
type logger struct {
	log *slog.Logger
}

func (l *logger) emit(level slog.Level, msg string) {
	l.log.Log(context.Background(), level, msg)
}

func (l *logger) emitf(level slog.Level, format string, args ...any) {
	if l.log.Enabled(context.Background(), level) {
		l.log.Log(context.Background(), level, fmt.Sprintf(format, args...))
	}
}

func (l *logger) Trace(msg string)                  { l.emit(slog.LevelDebug, msg) }
func (l *logger) Tracef(format string, args ...any) { l.emitf(slog.LevelDebug, format, args...) }
func (l *logger) Debug(msg string)                  { l.emit(slog.LevelDebug, msg) }
func (l *logger) Debugf(format string, args ...any) { l.emitf(slog.LevelDebug, format, args...) }
func (l *logger) Info(msg string)                   { l.emit(slog.LevelDebug, msg) }
func (l *logger) Infof(format string, args ...any)  { l.emitf(slog.LevelDebug, format, args...) }
func (l *logger) Warn(msg string)                   { l.emit(slog.LevelWarn, msg) }
func (l *logger) Warnf(format string, args ...any)  { l.emitf(slog.LevelWarn, format, args...) }
func (l *logger) Error(msg string)                  { l.emit(slog.LevelError, msg) }
func (l *logger) Errorf(format string, args ...any) { l.emitf(slog.LevelError, format, args...) }
