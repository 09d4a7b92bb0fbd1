package domains

import (
	"archive/zip"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
)

// KnownLists are the popularity lists a crawl can name instead of a file: each is the
// list's usual download location (a CSV, or a ZIP holding one).
var KnownLists = map[string]string{
	"tranco":   "https://tranco-list.eu/top-1m.csv.zip",
	"majestic": "https://downloads.majestic.com/majestic_million.csv",
	"umbrella": "https://s3-us-west-1.amazonaws.com/umbrella-static/top-1m.csv.zip",
}

// MaxListDownload bounds a downloaded list, compressed or not (the million-domain lists
// are 10 to 80 MB).
const MaxListDownload = 512 << 20

// ListSource says where a crawl's LIST argument comes from: the URL to download, or ""
// for a local file (or - for standard input). A known name (KnownLists) means its URL
// unless a file of that name exists.
func ListSource(arg string) string {
	if strings.HasPrefix(arg, "https://") || strings.HasPrefix(arg, "http://") {
		return arg
	}
	if u, ok := KnownLists[strings.ToLower(arg)]; ok {
		if _, err := os.Stat(arg); err != nil {
			return u
		}
	}
	return ""
}

// Fetch downloads the list at url into w; a ZIP archive must hold exactly one file,
// which is written. It returns the bytes written.
func Fetch(ctx context.Context, client *http.Client, url string, w io.Writer) (int64, error) {
	if client == nil {
		client = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, fmt.Errorf("list %s: %w", url, err)
	}
	req.Header.Set("User-Agent", "v6matrix-list-fetch")
	resp, err := client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("list %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("list %s: %s", url, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxListDownload+1))
	if err != nil {
		return 0, fmt.Errorf("list %s: %w", url, err)
	}
	if len(body) > MaxListDownload {
		return 0, fmt.Errorf("list %s: larger than %d bytes", url, MaxListDownload)
	}
	if !bytes.HasPrefix(body, []byte("PK\x03\x04")) {
		n, err := w.Write(body)
		return int64(n), err
	}
	zr, err := zip.NewReader(bytes.NewReader(body), int64(len(body)))
	if err != nil {
		return 0, fmt.Errorf("list %s: damaged ZIP: %w", url, err)
	}
	var files []*zip.File
	for _, f := range zr.File {
		if !f.FileInfo().IsDir() {
			files = append(files, f)
		}
	}
	if len(files) != 1 {
		return 0, fmt.Errorf("list %s: the ZIP holds %d files, want one list", url, len(files))
	}
	rc, err := files[0].Open()
	if err != nil {
		return 0, fmt.Errorf("list %s: %s: %w", url, files[0].Name, err)
	}
	defer rc.Close()
	n, err := io.Copy(w, io.LimitReader(rc, MaxListDownload+1))
	switch {
	case err != nil:
		return n, fmt.Errorf("list %s: %s: %w", url, files[0].Name, err)
	case n > MaxListDownload:
		return n, fmt.Errorf("list %s: %s: larger than %d bytes uncompressed", url, files[0].Name, MaxListDownload)
	}
	return n, nil
}
