/* udfread_dump: walk a UDF image with libudfread (an independent UDF reader) and
 * print one JSON object per entry, root first, depth first:
 *
 *   {"path":"/a/b","type":"dir|reg|unknown","size":N,"sha256":"hex"}
 *
 * "size" and "sha256" are given for regular files (content read with
 * udfread_file_read); an entry that cannot be opened or read gets "error".
 * libudfread 1.1 knows directories and files only: symlinks and other ICB
 * types show as "unknown" or "reg", so tests use it for names, sizes and data.
 *
 * Exit 0 when the walk finished, 3 when the image cannot be opened as UDF.
 * Used by the tests in tests/py (test_udf.py); not installed.
 */

#define _POSIX_C_SOURCE 200809L

#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <udfread/udfread.h>

#define MAX_DEPTH 64

static void json_string(const char* s) {
  putchar('"');
  for (const unsigned char* p = (const unsigned char*)s; *p; p++) {
    if (*p == '"' || *p == '\\') {
      putchar('\\');
      putchar(*p);
    } else if (*p < 0x20) {
      printf("\\u%04x", *p);
    } else {
      putchar(*p);
    }
  }
  putchar('"');
}

static void print_file(udfread* udf, const char* path) {
  UDFFILE* f = udfread_file_open(udf, path);
  if (!f) {
    printf("\"error\":\"cannot open\"");
    return;
  }
  int64_t size = udfread_file_size(f);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
  static unsigned char buf[1 << 16];
  int64_t total = 0;
  int failed = 0;
  for (;;) {
    ssize_t n = udfread_file_read(f, buf, sizeof buf);
    if (n < 0) {
      failed = 1;
      break;
    }
    if (n == 0)
      break;
    EVP_DigestUpdate(ctx, buf, (size_t)n);
    total += n;
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  EVP_DigestFinal_ex(ctx, md, &mdlen);
  EVP_MD_CTX_free(ctx);
  udfread_file_close(f);
  printf("\"size\":%" PRId64, size);
  if (failed || total != size) {
    printf(",\"error\":\"read %" PRId64 " of %" PRId64 " bytes\"", total, size);
    return;
  }
  printf(",\"sha256\":\"");
  for (unsigned int i = 0; i < mdlen; i++)
    printf("%02x", md[i]);
  putchar('"');
}

static void walk(udfread* udf, const char* path, int depth) {
  if (depth > MAX_DEPTH)
    return;
  UDFDIR* d = udfread_opendir(udf, path);
  if (!d) {
    printf("{\"path\":");
    json_string(path);
    printf(",\"type\":\"dir\",\"error\":\"cannot open directory\"}\n");
    return;
  }
  struct udfread_dirent ent;
  /* Collect names first: the recursion opens other directories. */
  size_t n = 0, cap = 16;
  char** names = malloc(cap * sizeof *names);
  unsigned* types = malloc(cap * sizeof *types);
  while (udfread_readdir(d, &ent)) {
    if (!strcmp(ent.d_name, ".") || !strcmp(ent.d_name, ".."))
      continue;
    if (n == cap) {
      cap *= 2;
      names = realloc(names, cap * sizeof *names);
      types = realloc(types, cap * sizeof *types);
    }
    names[n] = strdup(ent.d_name);
    types[n] = ent.d_type;
    n++;
  }
  udfread_closedir(d);
  for (size_t i = 0; i < n; i++) {
    size_t len = strlen(path) + strlen(names[i]) + 2;
    char* child = malloc(len);
    snprintf(child, len, "%s%s%s", path, strcmp(path, "/") ? "/" : "", names[i]);
    printf("{\"path\":");
    json_string(child);
    if (types[i] == UDF_DT_DIR) {
      printf(",\"type\":\"dir\"}\n");
      walk(udf, child, depth + 1);
    } else {
      printf(",\"type\":\"%s\",", types[i] == UDF_DT_REG ? "reg" : "unknown");
      print_file(udf, child);
      printf("}\n");
    }
    free(child);
    free(names[i]);
  }
  free(names);
  free(types);
}

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: udfread_dump IMAGE\n");
    return 2;
  }
  udfread* udf = udfread_init();
  if (!udf || udfread_open(udf, argv[1]) < 0) {
    fprintf(stderr, "udfread_dump: %s: not a UDF image libudfread can open\n", argv[1]);
    if (udf)
      udfread_close(udf);
    return 3;
  }
  printf("{\"path\":\"/\",\"type\":\"dir\"}\n");
  walk(udf, "/", 0);
  udfread_close(udf);
  return 0;
}
