package healthready

import (
	"errors"
	"strconv"
)

func itoa(i int) string { return strconv.Itoa(i) }

func errorsAs(err error, target any) bool { return errors.As(err, target) }
