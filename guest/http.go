//go:build wasip1

package guest

import (
	"encoding/binary"
	"encoding/json"
	"errors"
)

// HTTP makes HTTP requests through the host's HTTP capability ("http",
// package capability/httpcap), to the hosts the task is allowed: the
// guest has no sockets of its own. A request the host's policy refuses (a
// host off the list, a response over the cap, a timeout) is an error;
// a response of any status is not.
var HTTP HTTPClient

// HTTPClient is the type of HTTP.
type HTTPClient struct{}

// HTTPRequest is a request; Method "" means GET.
type HTTPRequest struct {
	Method string              `json:"method"`
	URL    string              `json:"url"`
	Header map[string][]string `json:"header,omitempty"`
	Body   []byte              `json:"-"`
}

// HTTPResponse is a response, its body read whole.
type HTTPResponse struct {
	Status int                 `json:"status"`
	Header map[string][]string `json:"header,omitempty"`
	Body   []byte              `json:"-"`
}

// Get fetches url.
func (c HTTPClient) Get(url string) (*HTTPResponse, error) {
	return c.Do(&HTTPRequest{Method: "GET", URL: url})
}

// Do sends req and returns the response.
func (HTTPClient) Do(req *HTTPRequest) (*HTTPResponse, error) {
	h, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	in := make([]byte, 4, 4+len(h)+len(req.Body))
	binary.LittleEndian.PutUint32(in, uint32(len(h)))
	in = append(append(in, h...), req.Body...)
	out, err := Call("http", "request", in)
	if err != nil {
		return nil, err
	}
	if len(out) < 4 || uint64(binary.LittleEndian.Uint32(out)) > uint64(len(out)-4) {
		return nil, errors.New("guest: the host's HTTP response is malformed")
	}
	n := binary.LittleEndian.Uint32(out)
	resp := &HTTPResponse{}
	if err := json.Unmarshal(out[4:4+n], resp); err != nil {
		return nil, err
	}
	resp.Body = out[4+n:]
	return resp, nil
}
