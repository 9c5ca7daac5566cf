package wire

import (
	"errors"
	"fmt"
	"net/http"
)

// Error codes: the stable, machine-readable part of an error response.
const (
	// CodeBadRequest: the body is not valid JSON for the endpoint (syntax,
	// wrong types, trailing data).
	CodeBadRequest = "bad_request"
	// CodeUnknownField: the body has a field the endpoint does not know.
	// Requests are strict so that a typo is not silently ignored.
	CodeUnknownField = "unknown_field"
	// CodeTooLarge: the body exceeds MaxRequestBytes.
	CodeTooLarge = "too_large"
	// CodeInvalid: a field's value is missing, malformed or out of range,
	// or the module file of an insmod is refused for what it is.
	CodeInvalid = "invalid_argument"
	// CodeBadPattern: a marker glob is malformed.
	CodeBadPattern = "bad_pattern"
	// CodeBadFilter: a filter does not parse or type-check.
	CodeBadFilter = "bad_filter"
	// CodeNotFound: no such session, recording, rule or module.
	CodeNotFound = "not_found"
	// CodeConflict: the session exists with other settings; a module of
	// that name is loaded; a module in use cannot be unloaded without force.
	CodeConflict = "conflict"
	// CodeLimit: too many sessions or recordings, or the memory they
	// need does not fit in the process's recording memory budget.
	CodeLimit = "limit_exceeded"
	// CodeUnknownEndpoint: no endpoint has this path.
	CodeUnknownEndpoint = "unknown_endpoint"
	// CodeMethodNotAllowed: the endpoint exists for other methods.
	CodeMethodNotAllowed = "method_not_allowed"
	// CodeForbidden: the peer is neither the process's user nor root.
	CodeForbidden = "forbidden"
	// CodeUnavailable: the agent is at capacity or closing, or the process
	// does not load modules at run time.
	CodeUnavailable = "unavailable"
	// CodeInternal: the agent failed; the message says how.
	CodeInternal = "internal"
)

// Error is the body of every error response, {"error": {...}}, and the
// error of a failed recording in an end frame. Clients return it as an
// error value.
type Error struct {
	// Status is the HTTP status (not part of the JSON: it is the
	// response's status line).
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// ErrorBody is the JSON shape of an error response.
type ErrorBody struct {
	Error *Error `json:"error"`
}

// Error returns the message, or the code if there is none.
func (e *Error) Error() string {
	if e.Message == "" {
		return e.Code
	}
	return e.Message
}

// Errorf returns an *Error with the status that goes with code.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Status: StatusOf(code), Code: code, Message: fmt.Sprintf(format, args...)}
}

// StatusOf returns the HTTP status of an error code.
func StatusOf(code string) int {
	switch code {
	case CodeBadRequest, CodeUnknownField, CodeInvalid, CodeBadPattern, CodeBadFilter:
		return http.StatusBadRequest
	case CodeTooLarge:
		return http.StatusRequestEntityTooLarge
	case CodeNotFound, CodeUnknownEndpoint:
		return http.StatusNotFound
	case CodeConflict:
		return http.StatusConflict
	case CodeLimit:
		return http.StatusTooManyRequests
	case CodeMethodNotAllowed:
		return http.StatusMethodNotAllowed
	case CodeForbidden:
		return http.StatusForbidden
	case CodeUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// IsCode reports whether err is an *Error with the given code.
func IsCode(err error, code string) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == code
}
