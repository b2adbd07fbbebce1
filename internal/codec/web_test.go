package codec

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	"google.golang.org/protobuf/encoding/protojson"
)

// decodeBody is a /decode request body of one payload encrypted by k,
// padded with whitespace (still valid JSON) to size bytes.
func decodeBody(t *testing.T, k *Keyring, size int) []byte {
	t.Helper()
	p, err := k.DataConverter().ToPayload("visible")
	require.NoError(t, err)
	body, err := protojson.Marshal(&commonpb.Payloads{Payloads: []*commonpb.Payload{p}})
	require.NoError(t, err)
	require.LessOrEqual(t, len(body), size)
	return append(body, bytes.Repeat([]byte(" "), size-len(body))...)
}

func serveWeb(k *Keyring, req *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	k.WebHandler(nil, func(*http.Request) bool { return req.Header.Get("Authorization") == "Bearer ok" }).ServeHTTP(rec, req)
	return rec
}

// unsized hides the body's length, as a chunked request does.
type unsized struct{ io.Reader }

func TestWebHandlerBoundsTheBody(t *testing.T) {
	k := keyring(t, "k1")
	tests := []struct {
		name     string
		size     int
		sized    bool
		token    string
		wantCode int
	}{
		{"largest batch with Content-Length", MaxWebRequestBytes, true, "ok", http.StatusOK},
		{"largest batch chunked", MaxWebRequestBytes, false, "ok", http.StatusOK},
		{"one byte more with Content-Length", MaxWebRequestBytes + 1, true, "ok", http.StatusRequestEntityTooLarge},
		{"one byte more chunked", MaxWebRequestBytes + 1, false, "ok", http.StatusRequestEntityTooLarge},
		{"too large without a token", MaxWebRequestBytes + 1, true, "", http.StatusUnauthorized},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader = bytes.NewReader(decodeBody(t, k, tc.size))
			if !tc.sized {
				body = unsized{body}
			}
			req := httptest.NewRequest(http.MethodPost, "/decode", body)
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			rec := serveWeb(k, req)
			require.Equal(t, tc.wantCode, rec.Code, rec.Body.String())
			if tc.wantCode == http.StatusOK {
				require.Contains(t, rec.Body.String(), "InZpc2libGUi") // base64 of "\"visible\""
			}
			if tc.wantCode == http.StatusRequestEntityTooLarge {
				require.Contains(t, rec.Body.String(), "larger than 8388608 bytes")
			}
		})
	}
}
