// tlogcheck checks wormlog's Merkle proofs, checkpoints and tiles with Go's
// own transparency-log code (golang.org/x/mod/sumdb/tlog and sumdb/note,
// written for the Go checksum database), so that wormlog's tree is judged
// by an implementation that is not ours. It exits 1 on any disagreement,
// including a tampered input that it fails to reject.
//
// Built in GOPATH mode against Debian's golang-golang-x-mod-dev:
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go run tools/tlogcheck/main.go DIR
//
// DIR holds (written by tools/wormctl/tests/tlog_go.rs through wormctl):
// vkey (the verifier key), old.cp and new.cp (signed checkpoints),
// proofs/*.json (`wormctl prove --json` against new.cp), consistency.json
// (`wormctl consistency --json` from old.cp to new.cp), and export/ (from
// `wormctl export-tlog`, taken at new.cp's size).
//
// Two subcommands check what a proved append and a witness hand out:
//
//	tlogcheck tlog-proof LOG_VKEY PROOF...
//	tlogcheck cosignature LOG_VKEY WITNESS_VKEY NOTE
//
// tlog-proof reads each PROOF as a C2SP tlog-proof (c2sp.org/tlog-proof@v1),
// opens its checkpoint note with note.Open and the log's vkey, and checks
// its inclusion path with tlog.CheckRecord for the record hash of the leaf
// data in its extra line, whose seq must be the index plus one.
//
// cosignature checks the note in the file NOTE for a C2SP cosignature/v1
// line (Ed25519) by the witness WITNESS_VKEY (name+keyid+base64(0x04 ||
// key)), with crypto/ed25519 and crypto/sha256 alone, and the log's own
// signature on it with note.Open, which ignores the witness's line.
//
// A third reads a live log through the C2SP tlog-tiles HTTP API (wormd):
//
//	tlogcheck http BASE_URL TOKEN LOG_VKEY
//
// It fetches BASE_URL/checkpoint (sending TOKEN as a bearer token), opens
// it with note.Open, reads hash tiles through tlog.TileHashReader (which
// checks every tile against the checkpoint) and entry bundles over HTTP,
// and checks that every record's leaf is in the tree: tlog.ProveRecord
// from the served tiles, then tlog.CheckRecord for the bundle's leaf.
//
// The vkeys are given as text, not as files. Each exits 1 with FAIL lines
// on stderr if anything does not check.
package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

var failures int

func fail(format string, args ...interface{}) {
	failures++
	fmt.Fprintf(os.Stderr, "FAIL: "+format+"\n", args...)
}

func must(err error, what string) {
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: %s: %v\n", what, err)
		os.Exit(1)
	}
}

// openCheckpoint opens a signed note with note.Open and parses its body
// as a C2SP tlog-checkpoint. tlog.ParseTree accepts only the Go checksum
// database's origin, so the body is read here.
func openCheckpoint(path string, verifiers note.Verifiers) (string, tlog.Tree) {
	data, err := os.ReadFile(path)
	must(err, path)
	n, err := note.Open(data, verifiers)
	must(err, "note.Open "+path)
	origin, t, err := parseCheckpoint(n.Text)
	must(err, path)
	return origin, t
}

// wormlog's tree checkpoints: wormlog/<log id, 16 bytes in hex>/v2.
var treeOrigin = regexp.MustCompile(`^wormlog/[0-9a-f]{32}/v2$`)

// parseCheckpoint reads a note's body (note.Note.Text) as a C2SP
// tlog-checkpoint of a wormlog tree: origin, decimal size (no sign, no
// leading zeros), base64 root of 32 bytes, then extension lines.
func parseCheckpoint(body string) (string, tlog.Tree, error) {
	var t tlog.Tree
	lines := strings.Split(body, "\n")
	if len(lines) < 4 || lines[len(lines)-1] != "" {
		return "", t, fmt.Errorf("checkpoint body has %d lines", len(lines)-1)
	}
	if !treeOrigin.MatchString(lines[0]) {
		return "", t, fmt.Errorf("origin %q is not a wormlog tree checkpoint (wormlog/<hex id>/v2)", lines[0])
	}
	size, err := strconv.ParseUint(lines[1], 10, 63)
	if err != nil || (len(lines[1]) > 1 && lines[1][0] == '0') {
		return "", t, fmt.Errorf("tree size %q is not a decimal below 2^63 without leading zeros", lines[1])
	}
	root, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(root) != tlog.HashSize {
		return "", t, fmt.Errorf("root %q is not a base64 SHA-256 hash", lines[2])
	}
	t.N = int64(size)
	copy(t.Hash[:], root)
	return lines[0], t, nil
}

func hashOf(s string) tlog.Hash {
	b, err := hex.DecodeString(s)
	must(err, "hex "+s)
	var h tlog.Hash
	copy(h[:], b)
	return h
}

type inclusion struct {
	Seq      int64    `json:"seq"`
	TreeSize int64    `json:"tree_size"`
	LeafData string   `json:"leaf_data"`
	LeafHash string   `json:"leaf_hash"`
	Hashes   []string `json:"hashes"`
}

type consistency struct {
	OldSize int64    `json:"old_size"`
	NewSize int64    `json:"new_size"`
	Hashes  []string `json:"hashes"`
}

// c2spTiles reads C2SP tiles (tile/<L>/<N>) for Go's TileHashReader, whose
// paths carry the tile height (tile/8/<L>/<N>).
type c2spTiles struct{ dir string }

func (c c2spTiles) Height() int { return 8 }

func (c c2spTiles) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		goPath := t.Path()
		c2sp := strings.Replace(goPath, "tile/8/", "tile/", 1)
		data, err := os.ReadFile(filepath.Join(c.dir, c2sp))
		if err != nil {
			return nil, err
		}
		out[i] = data
	}
	return out, nil
}

func (c c2spTiles) SaveTiles(tiles []tlog.Tile, data [][]byte) {}

const usage = `usage: tlogcheck DIR
       tlogcheck tlog-proof LOG_VKEY PROOF...
       tlogcheck cosignature LOG_VKEY WITNESS_VKEY NOTE
       tlogcheck http BASE_URL TOKEN LOG_VKEY`

func main() {
	if len(os.Args) >= 2 {
		switch os.Args[1] {
		case "tlog-proof":
			if len(os.Args) < 4 {
				fmt.Fprintln(os.Stderr, usage)
				os.Exit(2)
			}
			checkTlogProofs(os.Args[2], os.Args[3:])
			return
		case "http":
			if len(os.Args) != 5 {
				fmt.Fprintln(os.Stderr, usage)
				os.Exit(2)
			}
			checkHTTP(os.Args[2], os.Args[3], os.Args[4])
			return
		case "cosignature":
			if len(os.Args) != 5 {
				fmt.Fprintln(os.Stderr, usage)
				os.Exit(2)
			}
			checkCosignature(os.Args[2], os.Args[3], os.Args[4])
			return
		}
	}
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
	checkDir(os.Args[1])
}

// checkDir checks the checkpoints, proofs and tiles in dir (see the top).
func checkDir(dir string) {
	vkey, err := os.ReadFile(filepath.Join(dir, "vkey"))
	must(err, "vkey")
	verifier, err := note.NewVerifier(strings.TrimSpace(string(vkey)))
	must(err, "note.NewVerifier")
	verifiers := note.VerifierList(verifier)

	_, oldTree := openCheckpoint(filepath.Join(dir, "old.cp"), verifiers)
	_, newTree := openCheckpoint(filepath.Join(dir, "new.cp"), verifiers)

	// A note changed after signing must not open.
	data, _ := os.ReadFile(filepath.Join(dir, "new.cp"))
	forged := bytes.Replace(data, []byte(strconv.FormatInt(newTree.N, 10)+"\n"), []byte(strconv.FormatInt(newTree.N+1, 10)+"\n"), 1)
	if _, err := note.Open(forged, verifiers); err == nil {
		fail("note.Open accepted a checkpoint whose tree size was changed")
	}

	// Inclusion proofs: CheckRecord, and tampered ones rejected.
	files, _ := filepath.Glob(filepath.Join(dir, "proofs", "*.json"))
	sort.Strings(files)
	if len(files) == 0 {
		fail("no inclusion proofs in %s/proofs", dir)
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		must(err, f)
		var p inclusion
		must(json.Unmarshal(raw, &p), f)
		leaf, err := hex.DecodeString(p.LeafData)
		must(err, f+": leaf_data")
		lh := tlog.RecordHash(leaf)
		if lh != hashOf(p.LeafHash) {
			fail("%s: leaf_hash is not SHA-256(0x00 || leaf_data)", f)
		}
		if p.TreeSize != newTree.N {
			fail("%s: tree size %d, checkpoint %d", f, p.TreeSize, newTree.N)
		}
		proof := make(tlog.RecordProof, len(p.Hashes))
		for i, h := range p.Hashes {
			proof[i] = hashOf(h)
		}
		if err := tlog.CheckRecord(proof, newTree.N, newTree.Hash, p.Seq-1, lh); err != nil {
			fail("%s: tlog.CheckRecord: %v", f, err)
		}
		// Tampered: each must be rejected.
		if len(proof) > 0 {
			bad := append(tlog.RecordProof{}, proof...)
			bad[0][0] ^= 1
			if tlog.CheckRecord(bad, newTree.N, newTree.Hash, p.Seq-1, lh) == nil {
				fail("%s: a proof with a changed hash was accepted", f)
			}
			if p.Seq < newTree.N && tlog.CheckRecord(proof, newTree.N, newTree.Hash, p.Seq, lh) == nil {
				fail("%s: the proof was accepted for another index", f)
			}
		}
		leaf[20] ^= 1
		if tlog.CheckRecord(proof, newTree.N, newTree.Hash, p.Seq-1, tlog.RecordHash(leaf)) == nil {
			fail("%s: the proof was accepted for changed leaf data", f)
		}
	}

	// Consistency: CheckTree, and a rewritten history rejected.
	raw, err := os.ReadFile(filepath.Join(dir, "consistency.json"))
	must(err, "consistency.json")
	var c consistency
	must(json.Unmarshal(raw, &c), "consistency.json")
	if c.OldSize != oldTree.N || c.NewSize != newTree.N {
		fail("consistency.json is from %d to %d, the checkpoints are %d and %d", c.OldSize, c.NewSize, oldTree.N, newTree.N)
	}
	tp := make(tlog.TreeProof, len(c.Hashes))
	for i, h := range c.Hashes {
		tp[i] = hashOf(h)
	}
	if err := tlog.CheckTree(tp, newTree.N, newTree.Hash, oldTree.N, oldTree.Hash); err != nil {
		fail("tlog.CheckTree: %v", err)
	}
	badOld := oldTree.Hash
	badOld[3] ^= 0x80
	if tlog.CheckTree(tp, newTree.N, newTree.Hash, oldTree.N, badOld) == nil {
		fail("tlog.CheckTree accepted a changed old root")
	}
	if len(tp) > 0 {
		bad := append(tlog.TreeProof{}, tp...)
		bad[len(bad)-1][0] ^= 1
		if tlog.CheckTree(bad, newTree.N, newTree.Hash, oldTree.N, oldTree.Hash) == nil {
			fail("tlog.CheckTree accepted a changed proof")
		}
	}

	// The exported tiles, read through TileHashReader (which checks each
	// tile against the tree), give the checkpoint's root, Go's own proofs
	// equal wormlog's, and every entry bundle hashes to its leaf.
	export := filepath.Join(dir, "export")
	_, expTree := openCheckpoint(filepath.Join(export, "checkpoint"), verifiers)
	if expTree != newTree {
		fail("the export's checkpoint is not new.cp's tree (%d vs %d)", expTree.N, newTree.N)
	}
	reader := tlog.TileHashReader(expTree, c2spTiles{export})
	th, err := tlog.TreeHash(expTree.N, reader)
	if err != nil {
		fail("tlog.TreeHash over the exported tiles: %v", err)
	} else if th != expTree.Hash {
		fail("the exported tiles hash to %v, the checkpoint says %v", th, expTree.Hash)
	}
	for _, f := range files {
		raw, _ := os.ReadFile(f)
		var p inclusion
		json.Unmarshal(raw, &p)
		goProof, err := tlog.ProveRecord(expTree.N, p.Seq-1, reader)
		if err != nil {
			fail("tlog.ProveRecord(%d) from the tiles: %v", p.Seq-1, err)
			continue
		}
		if len(goProof) != len(p.Hashes) {
			fail("record %d: Go's proof has %d hashes, wormlog's %d", p.Seq, len(goProof), len(p.Hashes))
			continue
		}
		for i := range goProof {
			if goProof[i] != hashOf(p.Hashes[i]) {
				fail("record %d: proof hash %d differs from Go's", p.Seq, i)
			}
		}
	}
	checked := 0
	entriesDir := filepath.Join(export, "tile", "entries")
	bundles := 0
	filepath.Walk(entriesDir, func(b string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		// tile/entries/x001/234 or .../011.p/191: the bundle's index from
		// its path, and its width from a partial's suffix.
		rel, _ := filepath.Rel(entriesDir, b)
		width := int64(256)
		if i := strings.Index(rel, ".p/"); i >= 0 {
			w, err := strconv.ParseInt(rel[i+3:], 10, 64)
			must(err, b)
			width = w
			rel = rel[:i]
		}
		n := int64(0)
		for _, part := range strings.Split(rel, "/") {
			v, err := strconv.ParseInt(strings.TrimPrefix(part, "x"), 10, 64)
			must(err, b)
			n = n*1000 + v
		}
		data, _ := os.ReadFile(b)
		i := int64(0)
		for ; len(data) > 0; i++ {
			if len(data) < 2 {
				fail("bundle %s: a torn length", rel)
				break
			}
			l := int(binary.BigEndian.Uint16(data))
			if len(data) < 2+l {
				fail("bundle %s: entry %d runs past the end", rel, i)
				break
			}
			entry := data[2 : 2+l]
			data = data[2+l:]
			idx := n*256 + i
			hs, err := reader.ReadHashes([]int64{tlog.StoredHashIndex(0, idx)})
			if err != nil {
				fail("leaf %d from the tiles: %v", idx, err)
				break
			}
			if tlog.RecordHash(entry) != hs[0] {
				fail("entry %d of bundle %s does not hash to its leaf", i, rel)
			}
			checked++
		}
		if i != width {
			fail("bundle %s holds %d entries, its path says %d", rel, i, width)
		}
		bundles++
		return nil
	})
	if checked == 0 {
		fail("no entry bundle was checked")
	}
	// Changed tiles. One on the path to the root (the rightmost tile of
	// level 0, partial or full) must make TreeHash fail. A full tile off
	// that path is meant to be authenticated against its parent; Go's
	// tileHashReader (x/mod 0.7, and golang/mod's head as read on
	// 2026-11-27) skips that check when several of the root's subtrees lie
	// in one tile (its loop starts at len(stx), not at the number of tiles
	// they took), so for it we require only that a proof built from the
	// changed tile fails CheckRecord.
	tampered := filepath.Join(dir, "tampered")
	flip := func(rel string) {
		os.RemoveAll(tampered)
		must(copyDir(export, tampered), "copy export")
		path := filepath.Join(tampered, rel)
		td, err := os.ReadFile(path)
		must(err, path)
		td[len(td)-20] ^= 1
		must(os.WriteFile(path, td, 0o644), path)
	}
	last := tlog.Tile{H: 8, L: 0, N: (expTree.N - 1) / 256, W: int((expTree.N-1)%256) + 1}
	flip(strings.Replace(last.Path(), "tile/8/", "tile/", 1))
	if h, err := tlog.TreeHash(expTree.N, tlog.TileHashReader(expTree, c2spTiles{tampered})); err == nil && h == expTree.Hash {
		fail("TreeHash accepted a changed rightmost tile")
	}
	flip("tile/0/000")
	leaf5, err := reader.ReadHashes([]int64{tlog.StoredHashIndex(0, 5)})
	must(err, "leaf 5")
	if p, err := tlog.ProveRecord(expTree.N, 5, tlog.TileHashReader(expTree, c2spTiles{tampered})); err == nil {
		if tlog.CheckRecord(p, expTree.N, expTree.Hash, 5, leaf5[0]) == nil {
			fail("a proof built from a changed tile passed CheckRecord")
		} else {
			fmt.Println("tlogcheck: note: TileHashReader read a changed tile/0/000 without error; the proof it gave fails CheckRecord")
		}
	}

	if failures > 0 {
		fmt.Fprintf(os.Stderr, "tlogcheck: %d disagreements\n", failures)
		os.Exit(1)
	}
	fmt.Printf("tlogcheck: ok: 2 checkpoints opened, %d inclusion proofs, 1 consistency proof (%d -> %d), tiles of a tree of %d hash to its root, %d entries of %d bundles (partial included) hash to their leaves, tampered inputs rejected\n",
		len(files), oldTree.N, newTree.N, expTree.N, checked, bundles)
}

func copyDir(from, to string) error {
	return filepath.Walk(from, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		dst := filepath.Join(to, rel)
		if info.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, data, 0o644)
	})
}

// A tlog-proof's extra, as wormlog writes it: the record's leaf data
// (seq u64 LE, time u64 LE, kind, chain hash) and the previous record's
// chain hash.
const (
	leafDataLen = 49
	extraLen    = leafDataLen + 32
)

// tlogProof is a c2sp.org/tlog-proof@v1 file, parsed.
type tlogProof struct {
	extra  []byte // nil without an extra line
	index  int64
	path   tlog.RecordProof
	signed []byte // the checkpoint note, verbatim
}

// parseTlogProof reads a proof as C2SP tlog-proof specifies it: the
// header line, an optional `extra <base64>` line, `index <n>` (decimal,
// no leading zeros), zero or more base64 SHA-256 hashes, an empty line,
// then the checkpoint note verbatim.
func parseTlogProof(data []byte) (*tlogProof, error) {
	split := bytes.Index(data, []byte("\n\n"))
	if split < 0 {
		return nil, fmt.Errorf("no empty line before the checkpoint")
	}
	lines := strings.Split(string(data[:split]), "\n")
	if lines[0] != "c2sp.org/tlog-proof@v1" {
		return nil, fmt.Errorf("first line %q is not c2sp.org/tlog-proof@v1", lines[0])
	}
	lines = lines[1:]
	p := &tlogProof{signed: data[split+2:]}
	if len(lines) > 0 && strings.HasPrefix(lines[0], "extra ") {
		extra, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(lines[0], "extra "))
		if err != nil {
			return nil, fmt.Errorf("extra is not base64: %v", err)
		}
		p.extra = extra
		lines = lines[1:]
	}
	if len(lines) == 0 || !strings.HasPrefix(lines[0], "index ") {
		return nil, fmt.Errorf("no `index <n>` line")
	}
	n := strings.TrimPrefix(lines[0], "index ")
	index, err := strconv.ParseUint(n, 10, 63)
	if err != nil || (len(n) > 1 && n[0] == '0') {
		return nil, fmt.Errorf("index %q is not a decimal below 2^63 without leading zeros", n)
	}
	p.index = int64(index)
	for i, l := range lines[1:] {
		h, err := base64.StdEncoding.DecodeString(l)
		if err != nil || len(h) != tlog.HashSize {
			return nil, fmt.Errorf("inclusion path line %d (%q) is not a base64 SHA-256 hash", i+1, l)
		}
		var hash tlog.Hash
		copy(hash[:], h)
		p.path = append(p.path, hash)
	}
	return p, nil
}

// checkTlogProofs checks each proof file against the log's vkey: the note
// opens with note.Open (signatures by other keys, such as witnesses',
// ignored), its body is a wormlog tree checkpoint, the leaf data in extra
// is record index+1, and tlog.CheckRecord takes the path from
// tlog.RecordHash(leaf data) at index to the checkpoint's root.
func checkTlogProofs(logVkey string, files []string) {
	verifier, err := note.NewVerifier(strings.TrimSpace(logVkey))
	must(err, "note.NewVerifier (the log's vkey)")
	verifiers := note.VerifierList(verifier)
	var sizes []int64
	ignored := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		must(err, f)
		p, err := parseTlogProof(data)
		if err != nil {
			fail("%s: not a tlog-proof: %v", f, err)
			continue
		}
		n, err := note.Open(p.signed, verifiers)
		if err != nil {
			fail("%s: note.Open of its checkpoint: %v", f, err)
			continue
		}
		ignored += len(n.UnverifiedSigs)
		_, tree, err := parseCheckpoint(n.Text)
		if err != nil {
			fail("%s: %v", f, err)
			continue
		}
		if len(p.extra) != extraLen {
			fail("%s: extra holds %d bytes, not wormlog's leaf data and previous chain hash (%d)", f, len(p.extra), extraLen)
			continue
		}
		leaf := p.extra[:leafDataLen]
		if seq := binary.LittleEndian.Uint64(leaf[:8]); seq != uint64(p.index)+1 {
			fail("%s: the leaf data is record %d, index %d says record %d", f, seq, p.index, p.index+1)
		}
		if p.index >= tree.N {
			fail("%s: index %d is outside the checkpoint's tree of %d records", f, p.index, tree.N)
		}
		if err := tlog.CheckRecord(p.path, tree.N, tree.Hash, p.index, tlog.RecordHash(leaf)); err != nil {
			fail("%s: tlog.CheckRecord(index %d, tree of %d): %v", f, p.index, tree.N, err)
			continue
		}
		sizes = append(sizes, tree.N)
	}
	if failures > 0 {
		fmt.Fprintf(os.Stderr, "tlogcheck: %d of %d tlog-proofs do not check\n", failures, len(files))
		os.Exit(1)
	}
	sort.Slice(sizes, func(i, j int) bool { return sizes[i] < sizes[j] })
	fmt.Printf("tlogcheck: ok: %d tlog-proofs: notes opened with the log's key (%d other signature lines ignored), leaf seq = index+1, tlog.CheckRecord in trees of %d to %d records\n",
		len(files), ignored, sizes[0], sizes[len(sizes)-1])
}

// cosignerType is the C2SP signature type of an Ed25519 cosigner
// (cosignature/v1).
const cosignerType = 0x04

// witnessKey is a cosigner's vkey: name+keyidhex+base64(0x04 || key).
type witnessKey struct {
	name string
	id   [4]byte
	key  ed25519.PublicKey
}

// cosignerKeyID is SHA-256(name || "\n" || 0x04 || key)[:4].
func cosignerKeyID(name string, key []byte) [4]byte {
	h := sha256.New()
	h.Write([]byte(name))
	h.Write([]byte{'\n', cosignerType})
	h.Write(key)
	var id [4]byte
	copy(id[:], h.Sum(nil))
	return id
}

func parseWitnessKey(vkey string) (*witnessKey, error) {
	// The key's base64 may hold '+': only the first two separate fields.
	parts := strings.SplitN(strings.TrimSpace(vkey), "+", 3)
	if len(parts) != 3 {
		return nil, fmt.Errorf("vkey %q is not name+keyid+key", vkey)
	}
	name, idHex, key64 := parts[0], parts[1], parts[2]
	if name == "" || strings.IndexFunc(name, func(r rune) bool { return r <= ' ' || r >= 0x7f }) >= 0 {
		return nil, fmt.Errorf("key name %q is not printable ASCII without spaces", name)
	}
	blob, err := base64.StdEncoding.DecodeString(key64)
	if err != nil || len(blob) != 1+ed25519.PublicKeySize || blob[0] != cosignerType {
		return nil, fmt.Errorf("key is not base64(0x04 || 32-byte Ed25519 key)")
	}
	id, err := hex.DecodeString(idHex)
	if err != nil || len(idHex) != 8 {
		return nil, fmt.Errorf("key id %q is not 8 hex digits", idHex)
	}
	w := &witnessKey{name: name, key: ed25519.PublicKey(blob[1:])}
	w.id = cosignerKeyID(name, w.key)
	if !bytes.Equal(id, w.id[:]) {
		return nil, fmt.Errorf("key id %s is not SHA-256(name || \"\\n\" || 0x04 || key)[:4] = %x", idHex, w.id)
	}
	return w, nil
}

// checkCosignature checks the note in notePath for a cosignature/v1 line
// of the witness, and the log's own signature on it. Every line that
// names the witness's key (its name and key id) must verify, as for any
// signed note's known key; lines of other keys are not the witness's.
func checkCosignature(logVkey, witnessVkey, notePath string) {
	w, err := parseWitnessKey(witnessVkey)
	must(err, "the witness's vkey")
	data, err := os.ReadFile(notePath)
	must(err, notePath)

	// The body: the lines before the first empty line, each with its
	// newline; then one or more signature lines, each ending in a newline.
	split := bytes.Index(data, []byte("\n\n"))
	if split < 0 {
		fail("%s: no empty line between the body and the signatures", notePath)
		os.Exit(1)
	}
	body, sigs := data[:split+1], data[split+2:]
	if len(sigs) == 0 || sigs[len(sigs)-1] != '\n' {
		fail("%s: the signature lines do not end with a newline", notePath)
		os.Exit(1)
	}
	var times []uint64
	named := 0
	for _, line := range strings.Split(string(sigs[:len(sigs)-1]), "\n") {
		rest := strings.TrimPrefix(line, "\u2014 ")
		if rest == line {
			fail("%s: signature line %q does not start with an em dash and a space", notePath, line)
			continue
		}
		sp := strings.IndexByte(rest, ' ')
		if sp < 0 {
			fail("%s: signature line %q has no signature", notePath, line)
			continue
		}
		name, sig64 := rest[:sp], rest[sp+1:]
		if name != w.name {
			continue
		}
		blob, err := base64.StdEncoding.DecodeString(sig64)
		if err != nil {
			fail("%s: a signature line of %s is not base64", notePath, name)
			continue
		}
		// key id (4) || timestamp (u64, big-endian) || Ed25519 signature.
		if len(blob) < 4 || !bytes.Equal(blob[:4], w.id[:]) {
			continue // another key under this name
		}
		named++
		if len(blob) != 4+8+ed25519.SignatureSize {
			fail("%s: the cosignature of %s+%x holds %d bytes, not 4+8+64", notePath, w.name, w.id, len(blob))
			continue
		}
		t := binary.BigEndian.Uint64(blob[4:12])
		if t > 1<<63-1 {
			fail("%s: the cosignature of %s+%x has time %d, above 2^63-1", notePath, w.name, w.id, t)
			continue
		}
		msg := append([]byte("cosignature/v1\ntime "+strconv.FormatUint(t, 10)+"\n"), body...)
		if !ed25519.Verify(w.key, msg, blob[12:]) {
			fail("%s: the cosignature/v1 of %s+%x at time %d does not verify over the note's body (crypto/ed25519)", notePath, w.name, w.id, t)
			continue
		}
		times = append(times, t)
	}
	if named == 0 {
		fail("%s: no cosignature line of the witness %s+%x", notePath, w.name, w.id)
	}

	// The log's own signature, by Go's note.Open with the log's key alone:
	// the witness's line is an unknown key's and is left unverified.
	verifier, err := note.NewVerifier(strings.TrimSpace(logVkey))
	must(err, "note.NewVerifier (the log's vkey)")
	n, err := note.Open(data, note.VerifierList(verifier))
	if err != nil {
		fail("%s: note.Open with the log's key: %v", notePath, err)
	} else {
		if n.Text != string(body) {
			fail("%s: note.Open's body (%d bytes) is not the body the cosignature covers (%d bytes)", notePath, len(n.Text), len(body))
		}
		if _, _, err := parseCheckpoint(n.Text); err != nil {
			fail("%s: %v", notePath, err)
		}
		unverified := false
		for _, s := range n.UnverifiedSigs {
			unverified = unverified || s.Name == w.name
		}
		if named > 0 && !unverified {
			fail("%s: note.Open did not list the witness's line among the unverified signatures", notePath)
		}
	}
	if failures > 0 {
		fmt.Fprintf(os.Stderr, "tlogcheck: the cosigned note does not check (%d failures)\n", failures)
		os.Exit(1)
	}
	fmt.Printf("tlogcheck: ok: cosignature/v1 of %s+%x at time %d verified with crypto/ed25519; the log's signature by note.Open (%d line(s) of other keys ignored)\n",
		w.name, w.id, times[0], len(n.UnverifiedSigs))
}

// httpTiles reads C2SP tiles from a tlog-tiles server for Go's
// TileHashReader (Go's paths carry the height: tile/8/<L>/<N>).
type httpTiles struct{ base, token string }

func (h httpTiles) get(path string) ([]byte, error) {
	req, err := http.NewRequest("GET", h.base+"/"+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+h.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("GET %s: %s: %s", path, resp.Status, body)
	}
	return body, nil
}

func (h httpTiles) Height() int { return 8 }

func (h httpTiles) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		data, err := h.get(strings.Replace(t.Path(), "tile/8/", "tile/", 1))
		if err != nil {
			return nil, err
		}
		out[i] = data
	}
	return out, nil
}

func (h httpTiles) SaveTiles(tiles []tlog.Tile, data [][]byte) {}

// checkHTTP checks a live log's checkpoint, tiles and entry bundles.
func checkHTTP(base, token, vkey string) {
	verifier, err := note.NewVerifier(strings.TrimSpace(vkey))
	must(err, "note.NewVerifier")
	h := httpTiles{strings.TrimRight(base, "/"), token}
	cp, err := h.get("checkpoint")
	must(err, "checkpoint")
	n, err := note.Open(cp, note.VerifierList(verifier))
	must(err, "note.Open checkpoint")
	_, tree, err := parseCheckpoint(n.Text)
	must(err, "checkpoint")
	reader := tlog.TileHashReader(tree, h)
	th, err := tlog.TreeHash(tree.N, reader)
	must(err, "tlog.TreeHash over the served tiles")
	if th != tree.Hash {
		fail("the served tiles hash to %v, the checkpoint says %v", th, tree.Hash)
	}
	checked := int64(0)
	for start := int64(0); start < tree.N; start += 256 {
		w := tree.N - start
		if w > 256 {
			w = 256
		}
		t := tlog.Tile{H: 8, L: -1, N: start / 256, W: int(w)}
		bundle, err := h.get(strings.Replace(t.Path(), "tile/8/data/", "tile/entries/", 1))
		must(err, "entry bundle")
		for i := int64(0); i < w; i++ {
			if len(bundle) < 2 {
				fail("bundle %d ends before entry %d", t.N, i)
				break
			}
			size := int(binary.BigEndian.Uint16(bundle))
			if len(bundle) < 2+size {
				fail("bundle %d: entry %d overruns it", t.N, i)
				break
			}
			leaf := bundle[2 : 2+size]
			bundle = bundle[2+size:]
			index := start + i
			if seq := int64(binary.LittleEndian.Uint64(leaf[0:8])); seq != index+1 {
				fail("entry %d holds seq %d", index, seq)
			}
			proof, err := tlog.ProveRecord(tree.N, index, reader)
			if err != nil {
				fail("tlog.ProveRecord(%d): %v", index, err)
				continue
			}
			if err := tlog.CheckRecord(proof, tree.N, tree.Hash, index, tlog.RecordHash(leaf)); err != nil {
				fail("entry %d: tlog.CheckRecord: %v", index, err)
			}
			checked++
		}
		if len(bundle) != 0 {
			fail("bundle %d has %d bytes past its entries", t.N, len(bundle))
		}
	}
	if failures > 0 {
		os.Exit(1)
	}
	fmt.Printf("ok: tree of %d records, %d leaves checked over HTTP\n", tree.N, checked)
}
