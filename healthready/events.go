package healthready

import (
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyevents"
	"go.uber.org/zap"
)

// eventEmitter emits Caddy events like the built-in health checker does
// ("healthy"/"unhealthy" with {"host": addr}). Its zero value emits nothing
// (a context without a config, as in unit tests).
//
// Events are emitted from the probe goroutines, which start while Caddy is
// still provisioning the rest of the config. The provisioning context's
// module ancestry shares its backing array with the modules loaded after
// this one (so reading it races with their provisioning and can even name
// a sibling as the origin); the emitter therefore keeps only the plain
// context, and its events carry no origin module: subscribe by event name.
type eventEmitter struct {
	app *caddyevents.App
	ctx caddy.Context
}

func (e eventEmitter) emit(name, host string) {
	if e.app == nil {
		return
	}
	e.app.Emit(e.ctx, name, map[string]any{"host": host})
}

// loadEvents gets the events app the way reverse_proxy does. A bare
// context (unit tests) has no config to load it from; ctx.App would then
// panic, so that case is caught and events are off.
func loadEvents(ctx caddy.Context, logger *zap.Logger) (em eventEmitter) {
	defer func() {
		if recover() != nil {
			em = eventEmitter{}
		}
	}()
	app, err := ctx.App("events")
	if err != nil {
		logger.Warn("events app unavailable; healthy/unhealthy events are off", zap.Error(err))
		return eventEmitter{}
	}
	ev, _ := app.(*caddyevents.App)
	return eventEmitter{app: ev, ctx: caddy.Context{Context: ctx.Context}}
}
