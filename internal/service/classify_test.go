package service

import (
	"errors"
	"fmt"
	"testing"

	"github.com/zhisou/zhisou/index"
)

// TestClassify: each domain error matches the service sentinel it stands
// for, and keeps matching the domain error.
func TestClassify(t *testing.T) {
	for _, tc := range []struct{ domain, want error }{
		{index.ErrInvalid, ErrInvalid},
		{index.ErrNotFound, ErrNotFound},
		{index.ErrExists, ErrExists},
		{index.ErrClosed, ErrClosed},
		{index.ErrNoSpace, ErrResourceExhausted},
		{index.ErrDamaged, ErrDataLoss},
	} {
		err := classify(fmt.Errorf("read chunk: %w", tc.domain))
		if !errors.Is(err, tc.want) || !errors.Is(err, tc.domain) {
			t.Errorf("classify(%v) = %v: want it to match %v and %v", tc.domain, err, tc.want, tc.domain)
		}
	}
	if err := errors.New("other"); classify(err) != err {
		t.Error("an unknown error was changed")
	}
}
