package miniotransport

import (
	"runtime/debug"

	"go.uber.org/zap"
)

// recoverPanic logs a panic recovered in one of the transport's own
// goroutines (a hedged twin) with its stack, so it does not take Caddy
// down unnoticed.
func recoverPanic(logger *zap.Logger, what string, r any) {
	if logger == nil {
		logger = zap.NewNop()
	}
	logger.Error("panic recovered", zap.String("in", what), zap.Any("panic", r), zap.ByteString("stack", debug.Stack()))
}
