// Package wiretest finds the fields a codec drops, by reflection: the tests
// of every wire fill a value of the types it carries (engine.Task,
// engine.Config, pool.Config...) with a value in every field, send it
// across, and compare. A field added to one of those types is then a test
// failure until a wire carries it or says why it does not.
package wiretest

import (
	"fmt"
	"reflect"
	"slices"
)

// Fill sets every exported field of the struct v points to to a non-zero
// value, recursively (a slice or a map gets one filled element, a pointer a
// filled value), each field's value distinct from the others'. Fields of
// kinds no codec carries (funcs, channels, interfaces) are left zero, and
// their paths are returned: a test lists them, so a new one shows.
func Fill(v any) (unfilled []string) {
	rv := reflect.ValueOf(v).Elem()
	f := &filler{}
	f.fill(rv, rv.Type().Name())
	return f.unfilled
}

type filler struct {
	n        int
	unfilled []string
}

func (f *filler) fill(v reflect.Value, path string) {
	f.n++
	switch v.Kind() {
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(int64(f.n))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		v.SetUint(uint64(f.n))
	case reflect.Float32, reflect.Float64:
		v.SetFloat(float64(f.n) + 0.5)
	case reflect.String:
		v.SetString(fmt.Sprintf("%s#%d", path, f.n))
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 1, 1)
		f.fill(s.Index(0), path+"[0]")
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		f.fill(k, path+".key")
		f.fill(e, path+".value")
		m.SetMapIndex(k, e)
		v.Set(m)
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		f.fill(p.Elem(), path)
		v.Set(p)
	case reflect.Struct:
		for i := range v.NumField() {
			if sf := v.Type().Field(i); sf.IsExported() {
				f.fill(v.Field(i), path+"."+sf.Name)
			}
		}
	default:
		f.unfilled = append(f.unfilled, path)
	}
}

// Lost compares in and out, two values of the same type, and returns the
// paths of the exported fields whose values differ, sorted: what a codec
// that turned in into out dropped or changed.
func Lost(in, out any) []string {
	var lost []string
	diff(reflect.ValueOf(in), reflect.ValueOf(out), reflect.TypeOf(in).Name(), &lost)
	slices.Sort(lost)
	return lost
}

func diff(a, b reflect.Value, path string, lost *[]string) {
	switch a.Kind() {
	case reflect.Struct:
		for i := range a.NumField() {
			if sf := a.Type().Field(i); sf.IsExported() {
				diff(a.Field(i), b.Field(i), path+"."+sf.Name, lost)
			}
		}
	case reflect.Pointer:
		if a.IsNil() || b.IsNil() {
			if a.IsNil() != b.IsNil() {
				*lost = append(*lost, path)
			}
			return
		}
		diff(a.Elem(), b.Elem(), path, lost)
	case reflect.Slice:
		if a.IsNil() != b.IsNil() || a.Len() != b.Len() {
			*lost = append(*lost, path)
			return
		}
		for i := range a.Len() {
			diff(a.Index(i), b.Index(i), fmt.Sprintf("%s[%d]", path, i), lost)
		}
	case reflect.Func, reflect.Chan, reflect.Interface:
		if a.IsNil() != b.IsNil() {
			*lost = append(*lost, path)
		}
	default:
		if !reflect.DeepEqual(a.Interface(), b.Interface()) {
			*lost = append(*lost, path)
		}
	}
}
