package future

import (
	"context"
	"errors"
	"reflect"
)

// ErrCancelled is the error of a future ended by Cancel. It also matches
// context.Canceled, so code that already checks for a cancelled context
// treats a cancelled future the same way.
var ErrCancelled error = cancelledError{}

type cancelledError struct{}

func (cancelledError) Error() string        { return "future cancelled" }
func (cancelledError) Is(target error) bool { return target == context.Canceled }

// Failure is how Result and Err return the error a future ended with. It
// exists so that a task which itself failed with a timeout is never mistaken
// for the wait's own context ending: the wait returns the bare ctx.Err(), the
// task's outcome always comes as a *Failure. It reads as, and unwraps to, the
// task's error, so errors.Is and errors.As see through it.
type Failure struct{ Err error }

func (f *Failure) Error() string { return f.Err.Error() }
func (f *Failure) Unwrap() error { return f.Err }

// Cause returns the task's own error if err is a *Failure, and err unchanged
// otherwise. Use it where the wrapper has done its job, for example when
// passing the error on to code that compares errors with ==.
func Cause(err error) error {
	var f *Failure
	if errors.As(err, &f) {
		return f.Err
	}
	return err
}

// IsFailure reports whether err is a future's outcome rather than an error of
// the wait itself (the waiting context ending).
func IsFailure(err error) bool {
	var f *Failure
	return errors.As(err, &f)
}

// isNil reports whether err is nil, including a nil pointer (or other nilable
// value) stored in the error interface. Such a typed nil is a common slip
// (`var e *MyErr; return e`); treating it as a failure would fail a task that
// meant to succeed (CPython has the same trap: gh-132063).
func isNil(err error) bool {
	if err == nil {
		return true
	}
	v := reflect.ValueOf(err)
	switch v.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Func, reflect.Chan, reflect.Interface:
		return v.IsNil()
	}
	return false
}
