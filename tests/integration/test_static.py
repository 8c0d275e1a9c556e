"""tests/integration/test_static.py — the dashboard's files: GET / and /static/<path>.

Content types, ETag and Last-Modified with 304s, and no way out of web_dir: not by
"..", not percent-encoded, not through a symbolic link, not to hidden files.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gandtest  # noqa: E402


class StaticFiles(gandtest.DaemonTest):
    def test_static_files(self):
        web = os.path.join(self.dir, "web")
        os.makedirs(os.path.join(web, "css"))
        files = {"index.html": b"<!doctype html><title>gand</title>",
                 "app.js": b"console.log('gand');",
                 "css/site.css": b"body { margin: 0 }",
                 "logo.svg": b"<svg xmlns='http://www.w3.org/2000/svg'/>",
                 "blob.bin": b"\x00\x01",
                 ".secret": b"hidden"}
        for name, data in files.items():
            with open(os.path.join(web, name), "wb") as f:
                f.write(data)
        with open(os.path.join(self.dir, "outside.txt"), "wb") as f:
            f.write(b"outside")
        os.symlink(os.path.join(self.dir, "outside.txt"), os.path.join(web, "link.txt"))

        d = self.daemon(extra_args=["--web-dir", web]).start()
        for path, name, ctype in [("/", "index.html", "text/html"),
                                  ("/static/index.html", "index.html", "text/html"),
                                  ("/static/app.js", "app.js", "text/javascript"),
                                  ("/static/css/site.css", "css/site.css", "text/css"),
                                  ("/static/logo.svg", "logo.svg", "image/svg+xml"),
                                  ("/static/blob.bin", "blob.bin", "application/octet-stream"),
                                  ("/static/app.js?v=123", "app.js", "text/javascript")]:
            with self.subTest(path=path):
                r = d.request("GET", path)
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.body, files[name])
                self.assertTrue(r.header("Content-Type").startswith(ctype), r.headers)
                etag, lm = r.header("ETag"), r.header("Last-Modified")
                self.assertTrue(etag and lm, r.headers)
                self.assertEqual(d.request("GET", path, headers={"If-None-Match": etag}).status,
                                 304)
                self.assertEqual(d.request("GET", path, headers={"If-Modified-Since": lm}).status,
                                 304)
                self.assertEqual(
                    d.request("GET", path, headers={"If-None-Match": '"other"'}).status, 200)
                h = d.request("HEAD", path)
                self.assertEqual((h.status, h.body), (200, b""))

        # a changed file gets a new ETag
        etag = d.request("GET", "/static/app.js").header("ETag")
        with open(os.path.join(web, "app.js"), "wb") as f:
            f.write(b"console.log('changed, and longer');")
        r = d.request("GET", "/static/app.js", headers={"If-None-Match": etag})
        self.assertEqual(r.status, 200)
        self.assertNotEqual(r.header("ETag"), etag)

        for path in ["/static/../outside.txt", "/static/%2e%2e/outside.txt",
                     "/static/css/../../outside.txt", "/static/css/%2E%2E/%2E%2E/outside.txt",
                     "/static/..%2foutside.txt", "/static/link.txt", "/static/.secret",
                     "/static/css", "/static/css/", "/static//etc/passwd", "/static/nosuch.js",
                     "/static/%00", "/static/\\..\\outside.txt"]:
            with self.subTest(path=path):
                r = d.request("GET", path)
                self.assertProblem(r, 404)
                self.assertNotIn(b"outside", r.body.replace(b"outside.txt", b""))
        self.assertProblem(d.request("POST", "/static/app.js"), 405)

    def test_javascript_dir(self):
        js = os.path.join(self.dir, "javascript")
        os.makedirs(os.path.join(js, "chart.js"))
        with open(os.path.join(js, "chart.js", "chart.min.js"), "wb") as f:
            f.write(b"/* chart */")
        os.symlink("chart.min.js", os.path.join(js, "chart.js", "Chart.min.js"))
        d = self.daemon(extra_args=["--javascript-dir", js]).start()
        for path in ["/javascript/chart.js/chart.min.js", "/javascript/chart.js/Chart.min.js"]:
            r = d.request("GET", path)
            self.assertEqual((r.status, r.body), (200, b"/* chart */"), r)
            self.assertTrue(r.header("Content-Type").startswith("text/javascript"))
        for path in ["/javascript/../small-idx3-ubyte.gz", "/javascript/chart.js",
                     "/javascript/%2e%2e/small-idx3-ubyte.gz", "/javascript/"]:
            self.assertProblem(d.request("GET", path), 404)

    def test_no_dashboard(self):
        empty = os.path.join(self.dir, "empty-web")
        os.makedirs(empty)
        d = self.daemon(extra_args=["--web-dir", empty]).start()
        p = self.assertProblem(d.request("GET", "/"), 404)
        self.assertIn("index.html", p["detail"])


if __name__ == "__main__":
    gandtest.main()
