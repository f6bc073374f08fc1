package workload

import (
	"fmt"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"
)

const secretScheme = "secret://"

// secretStore reads secrets from a YAML or JSON file (JSON is YAML) of the
// form {namespace: {key: value}}. The file is read on every start, so an
// operator can add a secret without restarting the agent.
type secretStore struct{ path string }

func (st secretStore) lookup(namespace, key string) (string, error) {
	if st.path == "" {
		return "", fmt.Errorf("%w: failed to retrieve namespace secret %s: secret store not configured", ErrSecret, key)
	}
	b, err := os.ReadFile(st.path)
	if err != nil {
		return "", fmt.Errorf("%w: failed to retrieve namespace secret %s: %w", ErrSecret, key, err)
	}
	var doc map[string]map[string]string
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return "", fmt.Errorf("%w: failed to retrieve namespace secret %s: %s: want {namespace: {key: value}}: %w", ErrSecret, key, st.path, err)
	}
	v, ok := doc[namespace][key]
	if !ok {
		return "", fmt.Errorf("%w: failed to retrieve namespace secret %s: no key %q for namespace %q in %s", ErrSecret, key, key, namespace, st.path)
	}
	return v, nil
}

// resolve replaces every secret://KEY in argv and env values.
func (st secretStore) resolve(namespace string, argv []string, env map[string]string) ([]string, map[string]string, error) {
	outArgv := make([]string, len(argv))
	for i, a := range argv {
		outArgv[i] = a
		if key, ok := strings.CutPrefix(a, secretScheme); ok {
			v, err := st.lookup(namespace, key)
			if err != nil {
				return nil, nil, err
			}
			outArgv[i] = v
		}
	}
	outEnv := make(map[string]string, len(env))
	for k, a := range env {
		outEnv[k] = a
		if key, ok := strings.CutPrefix(a, secretScheme); ok {
			v, err := st.lookup(namespace, key)
			if err != nil {
				return nil, nil, err
			}
			outEnv[k] = v
		}
	}
	return outArgv, outEnv, nil
}
