// compose-envfile reads env files with docker compose's own env_file parser (compose-go's dotenv package, as
// used by `docker compose` v2) and prints, for each file named on the command line, one JSON line: the
// variables it defines, or {"error": "..."}. No variable of the environment is looked up: a value that needed
// interpolation would read as something else, which the tests notice.
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/compose-spec/compose-go/v2/dotenv"
)

func main() {
	out := json.NewEncoder(os.Stdout)
	for _, path := range os.Args[1:] {
		env, err := dotenv.GetEnvFromFile(map[string]string{}, []string{path})
		if err != nil {
			_ = out.Encode(map[string]string{"error": err.Error()})
			continue
		}
		if err := out.Encode(env); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
}
