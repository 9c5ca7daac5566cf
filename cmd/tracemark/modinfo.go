package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tracemark/tracemark/module"
)

// The commands of this file work on module and key files, without any
// process.

func modinfoCmd(a *app) *cobra.Command {
	var (
		keys   []string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:     "modinfo FILE.wasm [--key PUBKEY ...]",
		GroupID: "modules",
		Short:   "Show a module file's metadata, licence, signature and ABI",
		Long: `Show what a module file says about itself, like modinfo(8), without
loading it: name, version, description, author, licence (and whether it is
GPL-compatible), the host ABI it was built for and whether this tracemark's
ABI check passes, who signed it, its imports and exports, the memory it
needs, and the taint it would bring into a process (O, out-of-tree, depends
on where the process loads it from).

A signature is checked against the public keys given with --key (key
files written by "tracemark keygen", keyring files of such lines, or
directories of *.pub files): a module signed by one of them shows its
signer as trusted; any other signature shows as an unknown key, and a
module changed after signing as a bad signature.

Taint letters: P proprietary, F force-loaded (ABI check failed),
E unsigned or not signed by a trusted key, O out-of-tree
("tracemark taint --help" explains them all).`,
		Example: example(
			"tracemark modinfo classifier.wasm",
			"tracemark modinfo classifier.wasm --key release.key.pub",
			"tracemark modinfo classifier.wasm --json | jq .signature"),
		Args: args(cobra.ExactArgs(1)),
		RunE: func(_ *cobra.Command, argv []string) error {
			ring, err := module.LoadKeyring(keys...)
			if err != nil {
				return &usageError{fmt.Errorf("--key: %w", err)}
			}
			fi, err := module.InspectFile(argv[0], ring)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(a.stdout, fi)
			}
			fmt.Fprint(a.stdout, fi.String())
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&keys, "key", nil, "trust this public key file, keyring file or directory of *.pub files (repeatable)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func keygenCmd(a *app) *cobra.Command {
	var (
		out, name string
	)
	cmd := &cobra.Command{
		Use:     "keygen [-o KEYFILE] [--name NAME]",
		GroupID: "modules",
		Short:   "Make a key pair to sign modules with",
		Long: `Make an ed25519 key pair for signing modules: the private key goes to
KEYFILE (mode 0600; keep it secret) and the public key to KEYFILE.pub.
Existing files are never overwritten.

Sign modules with "tracemark sign --key KEYFILE". A host trusts the
signer when KEYFILE.pub is in its keyring (wasm.WithKeys, read with
module.LoadKeyring): modules it signed are then not tainted E, and a
host that requires signatures loads them. The name (default USER@HOST)
is how lsmod and modinfo show the signer.`,
		Example: example(
			"tracemark keygen -o release.key --name 'Example Plugins release'",
			"tracemark keygen && tracemark sign --key tracemark.key classifier.wasm"),
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("name") {
				name = defaultKeyName()
			}
			for _, p := range []string{out, out + ".pub"} {
				if _, err := os.Lstat(p); err == nil {
					return usagef("%s already exists: keygen never overwrites a key; choose another -o", p)
				}
			}
			k, err := module.GenerateKey(name, nil)
			if err != nil {
				return &usageError{fmt.Errorf("--name: %w", err)}
			}
			if err := module.WriteKeyPair(out, k); err != nil {
				return err
			}
			pub := k.Public()
			fmt.Fprintf(a.stdout, "Private key: %s (mode 0600: keep it secret)\n", out)
			fmt.Fprintf(a.stdout, "Public key:  %s.pub\n", out)
			fmt.Fprintf(a.stdout, "Signer:      %s (%s)\n", clean(pub.Name), pub.Fingerprint())
			fmt.Fprintf(a.stdout, "Sign modules with: tracemark sign --key %s FILE.wasm\n", out)
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "tracemark.key", "private key file; the public key goes to the same name plus .pub")
	cmd.Flags().StringVar(&name, "name", "", "the signer's name, shown by lsmod and modinfo (default USER@HOST)")
	return cmd
}

// defaultKeyName is USER@HOST, as ssh-keygen names keys.
func defaultKeyName() string {
	name := "tracemark"
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		name += "@" + h
	}
	return name
}

func signCmd(a *app) *cobra.Command {
	var key string
	cmd := &cobra.Command{
		Use:     "sign --key KEYFILE FILE.wasm ...",
		GroupID: "modules",
		Short:   "Sign module files",
		Long: `Sign module files in place with a private key from "tracemark keygen":
an ed25519 signature over the whole file goes into its tracemark.sig
section, replacing any earlier signature. Sign last: changing the file or
its metadata afterwards breaks the signature (the module then shows a bad
signature and is tainted E).`,
		Example: example(
			"tracemark sign --key release.key classifier.wasm",
			"tracemark sign --key release.key classifier.wasm && tracemark modinfo --key release.key.pub classifier.wasm"),
		Args: args(cobra.MinimumNArgs(1)),
		RunE: func(_ *cobra.Command, argv []string) error {
			if key == "" {
				return usagef("sign needs --key KEYFILE (tracemark keygen makes one)")
			}
			k, err := module.LoadPrivateKey(key)
			if errors.Is(err, fs.ErrNotExist) {
				return usagef("--key %s: no such file (tracemark keygen makes one)", key)
			}
			if err != nil {
				return &usageError{fmt.Errorf("--key: %w", err)}
			}
			if st, err := os.Stat(key); err == nil && st.Mode().Perm()&0o077 != 0 {
				fmt.Fprintf(a.stderr, "warning: private key %s is readable by others (mode %v): chmod 600 %s\n", key, st.Mode().Perm(), key)
			}
			pub := k.Public()
			var failed []string
			for _, f := range argv {
				if err := module.SignFile(f, k); err != nil {
					fmt.Fprintf(a.stderr, "tracemark: %v\n", err)
					failed = append(failed, f)
					continue
				}
				fmt.Fprintf(a.stdout, "Signed %s as %s (%s)\n", f, clean(pub.Name), pub.Fingerprint())
			}
			if len(failed) > 0 {
				return fmt.Errorf("not signed: %s", strings.Join(failed, ", "))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&key, "key", "", "private key file written by tracemark keygen (required)")
	return cmd
}
