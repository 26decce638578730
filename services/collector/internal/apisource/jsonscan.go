package apisource

import (
	"bytes"
	"errors"

	"github.com/segmentio/encoding/json"
)

// The scanner below walks JSON that json.Valid accepted, without decoding
// it: a page's records are slices of the page, and a record's key and time
// fields are found without building maps. A page of 1,000 records is read
// with a handful of allocations.

var errScan = errors.New("not valid JSON")

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// skipString returns the index after the string that starts at b[i] ('"').
func skipString(b []byte, i int) (int, error) {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1, nil
		}
	}
	return 0, errScan
}

// skipValue returns the index after the value that starts at b[i].
func skipValue(b []byte, i int) (int, error) {
	if i >= len(b) {
		return 0, errScan
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				end, err := skipString(b, j)
				if err != nil {
					return 0, err
				}
				j = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1, nil
				}
			}
		}
		return 0, errScan
	}
	j := i
	for j < len(b) && !isSpace(b[j]) && b[j] != ',' && b[j] != '}' && b[j] != ']' {
		j++
	}
	if j == i {
		return 0, errScan
	}
	return j, nil
}

// field returns the value of key in the object v.
func field(v []byte, key string) ([]byte, bool, error) {
	i := skipSpace(v, 0)
	if i >= len(v) || v[i] != '{' {
		return nil, false, nil
	}
	i = skipSpace(v, i+1)
	if i < len(v) && v[i] == '}' {
		return nil, false, nil
	}
	for i < len(v) {
		if v[i] != '"' {
			return nil, false, errScan
		}
		end, err := skipString(v, i)
		if err != nil {
			return nil, false, err
		}
		k := v[i+1 : end-1]
		match := string(k) == key
		if !match && bytes.IndexByte(k, '\\') >= 0 {
			var s string
			match = json.Unmarshal(v[i:end], &s) == nil && s == key
		}
		i = skipSpace(v, end)
		if i >= len(v) || v[i] != ':' {
			return nil, false, errScan
		}
		i = skipSpace(v, i+1)
		vend, err := skipValue(v, i)
		if err != nil {
			return nil, false, err
		}
		if match {
			return v[i:vend], true, nil
		}
		i = skipSpace(v, vend)
		if i < len(v) && v[i] == ',' {
			i = skipSpace(v, i+1)
			continue
		}
		if i < len(v) && v[i] == '}' {
			return nil, false, nil
		}
		return nil, false, errScan
	}
	return nil, false, errScan
}

// elements returns the elements of the array v as slices of v.
func elements(v []byte) ([][]byte, error) {
	i := skipSpace(v, 0)
	if i >= len(v) || v[i] != '[' {
		return nil, errScan
	}
	var out [][]byte
	i = skipSpace(v, i+1)
	if i < len(v) && v[i] == ']' {
		return out, nil
	}
	for i < len(v) {
		end, err := skipValue(v, i)
		if err != nil {
			return nil, err
		}
		out = append(out, v[i:end])
		i = skipSpace(v, end)
		if i < len(v) && v[i] == ',' {
			i = skipSpace(v, i+1)
			continue
		}
		if i < len(v) && v[i] == ']' {
			return out, nil
		}
		return nil, errScan
	}
	return nil, errScan
}

// compact returns v without insignificant white space: v itself when it has
// none (the common case), else a compacted copy.
func compact(v []byte) []byte {
	if bytes.IndexAny(v, " \t\r\n") < 0 {
		return v
	}
	out := make([]byte, 0, len(v))
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c == '"':
			end, err := skipString(v, i)
			if err != nil {
				return append(out, v[i:]...)
			}
			out = append(out, v[i:end]...)
			i = end - 1
		case isSpace(c):
		default:
			out = append(out, c)
		}
	}
	return out
}
