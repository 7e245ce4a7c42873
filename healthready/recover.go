package healthready

import (
	"runtime/debug"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
)

// recoverPanic keeps a panic in a background goroutine from taking the
// whole Caddy process (every site it serves) down: it logs the panic with
// its stack at error level, as Caddy's own active health checker does,
// and returns normally. It must be the deferred call itself (recover only
// stops a panic when called by the deferred function directly):
//
//	defer recoverPanic(logger, "probe panicked", zap.String("target", url))
//
// Where the goroutine goes on is the caller's choice: the loops of this
// package defer it around each iteration, so that one bad probe or
// evaluation costs that iteration only, and once more around the loop.
func recoverPanic(logger *zap.Logger, msg string, fields ...zap.Field) {
	if err := recover(); err != nil {
		if logger == nil {
			logger = loopLogger()
		}
		logger.Error(msg, append(fields, zap.Any("panic", err), zap.ByteString("stack", debug.Stack()))...)
	}
}

// loopLogger is the logger of the shared probe loops. They outlive the
// config that started them, so they log through Caddy's current default
// logger, never through a logger of one config generation, whose output a
// reload may have closed.
func loopLogger() *zap.Logger {
	return caddy.Log().Named("http.reverse_proxy.upstreams.healthready")
}
