package codec

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/encoding/protojson"
)

func keyring(t *testing.T, ids ...string) *Keyring {
	t.Helper()
	var specs []string
	for _, id := range ids {
		s, err := NewKey(id)
		require.NoError(t, err)
		specs = append(specs, s)
	}
	k, err := ParseKeys(strings.Join(specs, ","))
	require.NoError(t, err)
	return k
}

func TestRoundTripHidesPlaintext(t *testing.T) {
	k := keyring(t, "k1")
	dc := k.DataConverter()
	p, err := dc.ToPayload(map[string]string{"DB_PASSWORD": "s3cr3t-value-xyz"})
	require.NoError(t, err)
	require.NotContains(t, string(p.Data), "s3cr3t")
	require.Equal(t, EncodingEncrypted, string(p.Metadata["encoding"]))
	var back map[string]string
	require.NoError(t, dc.FromPayload(p, &back))
	require.Equal(t, "s3cr3t-value-xyz", back["DB_PASSWORD"])
}

func TestRotationKeepsOldPayloadsReadable(t *testing.T) {
	oldKey, err := NewKey("2026-01")
	require.NoError(t, err)
	newKey, err := NewKey("2026-06")
	require.NoError(t, err)
	before, err := ParseKeys(oldKey)
	require.NoError(t, err)
	after, err := ParseKeys(newKey + "," + oldKey)
	require.NoError(t, err)
	require.Equal(t, "2026-06", after.ActiveKeyID())

	p, err := before.DataConverter().ToPayload("hello")
	require.NoError(t, err)
	var s string
	require.NoError(t, after.DataConverter().FromPayload(p, &s))
	require.Equal(t, "hello", s)

	// Without the old key the error names the missing key id.
	onlyNew, err := ParseKeys(newKey)
	require.NoError(t, err)
	err = onlyNew.DataConverter().FromPayload(p, &s)
	require.ErrorContains(t, err, `unknown key id "2026-01"`)
}

func TestTamperingIsDetected(t *testing.T) {
	k := keyring(t, "k1")
	enc, err := k.Encode([]*commonpb.Payload{{Data: []byte("x")}})
	require.NoError(t, err)
	enc[0].Data[len(enc[0].Data)-1] ^= 1
	_, err = k.Decode(enc)
	require.Error(t, err)
	// A payload relabelled with another key id fails too (the id is bound as
	// additional data).
	enc, _ = k.Encode([]*commonpb.Payload{{Data: []byte("x")}})
	enc[0].Metadata["encryption-key-id"] = []byte("k2")
	k2 := keyring(t, "k1", "k2")
	_, err = k2.Decode(enc)
	require.Error(t, err)
}

func TestPlainPayloadsPassThrough(t *testing.T) {
	k := keyring(t, "k1")
	p, err := converter.GetDefaultDataConverter().ToPayload("legacy")
	require.NoError(t, err)
	out, err := k.Decode([]*commonpb.Payload{p})
	require.NoError(t, err)
	require.Equal(t, p, out[0])
}

func TestParseKeysErrors(t *testing.T) {
	for spec, want := range map[string]string{
		"":                  "no codec key",
		"nokey":             "want <id>:",
		"k1:dG9vc2hvcnQ=":   "32 bytes",
		":AAAA":             "want <id>:",
		"k1:!!!notbase64!!": "32 bytes",
	} {
		_, err := ParseKeys(spec)
		require.ErrorContains(t, err, want, spec)
	}
	k, _ := NewKey("a")
	_, err := ParseKeys(k + "," + k)
	require.ErrorContains(t, err, "given twice")
}

func TestHandlerDecodesForTheWebUI(t *testing.T) {
	k := keyring(t, "k1")
	p, err := k.DataConverter().ToPayload("visible")
	require.NoError(t, err)
	body, err := protojson.Marshal(&commonpb.Payloads{Payloads: []*commonpb.Payload{p}})
	require.NoError(t, err)
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, "/decode", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	k.Handler().ServeHTTP(rec, req)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.Contains(t, rec.Body.String(), "InZpc2libGUi") // base64 of "\"visible\""
}
