//go:build wasip1

// Command weather is the README's plugin: its "weather" task asks the host
// for the API's address (a typed host function), then fetches the city's
// weather from it over the host's HTTP capability.
package main

import (
	"fmt"

	"github.com/wasmpool/wasmpool/guest"
)

func main() {}

//go:wasmexport weather
func weather() int32 {
	return guest.Serve(func(city []byte) ([]byte, error) {
		api, err := guest.Call("config", "get", []byte("weather_api"))
		if err != nil {
			return nil, err
		}
		resp, err := guest.HTTP.Get(string(api) + "/" + string(city))
		if err != nil {
			return nil, err
		}
		if resp.Status != 200 {
			return nil, fmt.Errorf("the weather API answered %d", resp.Status)
		}
		return resp.Body, nil
	})
}
