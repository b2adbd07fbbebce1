// Package codec encrypts every Temporal payload (workflow inputs, activity
// arguments and results, query answers, side-effect markers) with AES-256-GCM
// before it leaves the process, so generated secrets never sit in plain text
// in workflow history. Keys carry an id: the id travels with each payload, so
// keys can be rotated by adding a new active key and keeping the old ones
// for decryption.
package codec

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/protobuf/proto"
)

const (
	metadataEncoding = "encoding"
	metadataKeyID    = "encryption-key-id"
	// EncodingEncrypted marks a payload made by this codec.
	EncodingEncrypted = "binary/encrypted"
)

// Keyring holds the active key and every key still needed to decrypt.
type Keyring struct {
	active string
	aeads  map[string]cipher.AEAD
}

// ParseKeys reads "id1:base64key,id2:base64key". The first key encrypts;
// all decrypt. Keys are 32 bytes (AES-256), standard or URL base64.
func ParseKeys(spec string) (*Keyring, error) {
	k := &Keyring{aeads: map[string]cipher.AEAD{}}
	for i, part := range strings.Split(spec, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		id, b64, ok := strings.Cut(part, ":")
		if !ok || id == "" {
			return nil, fmt.Errorf("codec key %d: want <id>:<base64 32-byte key>", i+1)
		}
		raw, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			raw, err = base64.URLEncoding.DecodeString(b64)
		}
		if err != nil || len(raw) != 32 {
			return nil, fmt.Errorf("codec key %q: must be 32 bytes in base64", id)
		}
		if _, dup := k.aeads[id]; dup {
			return nil, fmt.Errorf("codec key %q given twice", id)
		}
		block, err := aes.NewCipher(raw)
		if err != nil {
			return nil, fmt.Errorf("codec key %q: %w", id, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("codec key %q: %w", id, err)
		}
		if k.active == "" {
			k.active = id
		}
		k.aeads[id] = aead
	}
	if k.active == "" {
		return nil, fmt.Errorf("no codec key given")
	}
	return k, nil
}

// NewKey returns a fresh key in the form ParseKeys reads, for development.
func NewKey(id string) (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return id + ":" + base64.StdEncoding.EncodeToString(b), nil
}

// ActiveKeyID names the key new payloads are encrypted with.
func (k *Keyring) ActiveKeyID() string { return k.active }

// Encode implements converter.PayloadCodec.
func (k *Keyring) Encode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	aead := k.aeads[k.active]
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		plain, err := proto.Marshal(p)
		if err != nil {
			return nil, fmt.Errorf("encrypt payload: %w", err)
		}
		nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plain)+aead.Overhead())
		if _, err := rand.Read(nonce); err != nil {
			return nil, fmt.Errorf("encrypt payload: %w", err)
		}
		out[i] = &commonpb.Payload{
			Metadata: map[string][]byte{
				metadataEncoding: []byte(EncodingEncrypted),
				metadataKeyID:    []byte(k.active),
			},
			Data: aead.Seal(nonce, nonce, plain, []byte(k.active)),
		}
	}
	return out, nil
}

// Decode implements converter.PayloadCodec. Payloads this codec did not
// make pass through unchanged, so histories from before encryption replay.
func (k *Keyring) Decode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		if string(p.GetMetadata()[metadataEncoding]) != EncodingEncrypted {
			out[i] = p
			continue
		}
		id := string(p.GetMetadata()[metadataKeyID])
		aead, ok := k.aeads[id]
		if !ok {
			return nil, fmt.Errorf("decrypt payload: unknown key id %q (is it still configured?)", id)
		}
		if len(p.Data) < aead.NonceSize() {
			return nil, fmt.Errorf("decrypt payload: too short")
		}
		nonce, sealed := p.Data[:aead.NonceSize()], p.Data[aead.NonceSize():]
		plain, err := aead.Open(nil, nonce, sealed, []byte(id))
		if err != nil {
			return nil, fmt.Errorf("decrypt payload with key %q: %w", id, err)
		}
		var orig commonpb.Payload
		if err := proto.Unmarshal(plain, &orig); err != nil {
			return nil, fmt.Errorf("decrypt payload: %w", err)
		}
		out[i] = &orig
	}
	return out, nil
}

// DataConverter wraps the SDK's default converter with this codec.
func (k *Keyring) DataConverter() converter.DataConverter {
	return converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), k)
}

// FailureConverter encodes failure messages and stack traces with the same
// data converter, so error texts (which may quote a service's output) are
// not plain in history either.
func (k *Keyring) FailureConverter() converter.FailureConverter {
	return temporal.NewDefaultFailureConverter(temporal.DefaultFailureConverterOptions{
		DataConverter:          k.DataConverter(),
		EncodeCommonAttributes: true,
	})
}

// Handler serves the codec protocol the Temporal Web UI and CLI speak
// (POST …/encode and …/decode). Authentication and CORS are the caller's.
func (k *Keyring) Handler() http.Handler {
	return converter.NewPayloadCodecHTTPHandler(k)
}
