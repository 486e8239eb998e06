package units

import "testing"

func TestParseSize(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{in: "1024", want: 1024},
		{in: "0", want: 0},
		{in: "512k", want: 512 << 10},
		{in: "256m", want: 256 << 20},
		{in: "1g", want: 1 << 30},
		{in: "1.5g", want: 3 << 29},
		{in: "2t", want: 2 << 40},
		{in: "64MiB", want: 64 << 20},
		{in: "64mi", want: 64 << 20},
		{in: "2GB", want: 2 << 30},
		{in: "100b", want: 100},
		{in: " 8K ", want: 8 << 10},
		{in: "0.5k", want: 512},
		{in: "", wantErr: true},
		{in: "g", wantErr: true},
		{in: "lots", wantErr: true},
		{in: "-1", wantErr: true},
		{in: "-1g", wantErr: true},
		{in: "1.2.3m", wantErr: true},
		{in: "inf", wantErr: true},
		{in: "1e3", wantErr: true},
		{in: "0x10", wantErr: true},
		{in: "1p", wantErr: true},
		{in: "9999999999t", wantErr: true},
		{in: "8388608t", wantErr: true}, // 2^63 bytes
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseSize(tc.in)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Errorf("ParseSize(%q) = %d, %v; want %d, error %v", tc.in, got, err, tc.want, tc.wantErr)
			}
		})
	}
}
