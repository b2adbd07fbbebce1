package api

import (
	_ "embed"
	"net/http"

	"github.com/gin-gonic/gin"
)

// openAPIDocument is the API's OpenAPI 3.1 contract: every route, the roles
// it admits (x-roles), its parameters, bodies and answers. TestOpenAPI
// checks it against the router; its answer schemas are generated from the
// Go types (go test ./api/ -run TestOpenAPISchemas -update).
//
//go:embed openapi.json
var openAPIDocument []byte

// serveOpenAPI answers GET /openapi.json, unauthenticated: the contract
// says nothing a caller could not learn by calling the API.
func serveOpenAPI(c *gin.Context) {
	c.Data(http.StatusOK, "application/json", openAPIDocument)
}
