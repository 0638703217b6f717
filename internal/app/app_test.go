package app

import "testing"

func TestWithBinaryParameters(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"postgres://u:p@h:5432/db?sslmode=disable": "postgres://u:p@h:5432/db?binary_parameters=yes&sslmode=disable",
		"postgres://h/db?binary_parameters=no":     "postgres://h/db?binary_parameters=no",
		"host=h dbname=db sslmode=disable":         "host=h dbname=db sslmode=disable binary_parameters=yes",
		"postgresql://h/db":                        "postgresql://h/db?binary_parameters=yes",
	} {
		if got := withBinaryParameters(in); got != want {
			t.Errorf("withBinaryParameters(%q) = %q, want %q", in, got, want)
		}
	}
}
