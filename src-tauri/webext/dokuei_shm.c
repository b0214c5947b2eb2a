/*
 * Dokuei's web-process extension, built by src-tauri/build.rs and carried in the app, which
 * hands it to WebKitGTK at start (src-tauri/src/lib.rs; DOKUEI_WEB_EXTENSIONS=none leaves it out).
 *
 * Every pixel transport the webview offers (the dokuei: URI scheme, a loopback HTTP server)
 * copies the bytes through WebKit's network process in small chunks. This extension gives the
 * page a second way: the shell writes a piece of a stack once into a file in /dev/shm, and
 * `dokueiShm(name)` in the page maps that file into the web process and copies it once into a
 * new ArrayBuffer (one memcpy in the web process, no IPC). An ArrayBuffer over the mapping
 * itself (jsc_value_new_array_buffer) was tried first: it crashes the web process, because
 * JavaScriptCore keeps array buffers inside its Gigacage (it works with GIGACAGE_ENABLED=0,
 * which the app does not set). The file is unlinked as soon as it is opened, so each name
 * serves once.
 *
 * Names are checked: "dokuei-" then letters, digits and '-', nothing else (no path). Only the
 * app's own page gets the function (own_page).
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jsc/jsc.h>
#include <webkit2/webkit-web-extension.h>

static gboolean valid_name(const char *name) {
  if (name == NULL || strncmp(name, "dokuei-", 7) != 0 || strlen(name) > 100) return FALSE;
  for (const char *c = name + 7; *c; c++) {
    if (!g_ascii_isalnum(*c) && *c != '-') return FALSE;
  }
  return TRUE;
}

static JSCValue *throw_error(JSCContext *context, const char *what, const char *name) {
  jsc_context_throw_printf(context, "dokueiShm(%s): %s", name ? name : "null", what);
  return jsc_value_new_undefined(context);
}

/* dokueiShm(name) → a new ArrayBuffer holding /dev/shm/<name>, which is unlinked. */
static JSCValue *dokuei_shm(const char *name, gpointer user_data) {
  (void)user_data;
  JSCContext *context = jsc_context_get_current();
  if (!valid_name(name)) return throw_error(context, "not a Dokuei shared-memory name", name);
  char *path = g_strconcat("/dev/shm/", name, NULL);
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0) {
    int error = errno;
    g_free(path);
    return throw_error(context, g_strerror(error), name);
  }
  unlink(path);
  g_free(path);
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != getuid()) {
    close(fd);
    return throw_error(context, "not a regular file of this user", name);
  }
  size_t size = (size_t)st.st_size;
  void *data = size > 0 ? mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0) : NULL;
  int error = errno;
  close(fd);
  if (size > 0 && data == MAP_FAILED) return throw_error(context, g_strerror(error), name);
  JSCValue *array = jsc_value_new_typed_array(context, JSC_TYPED_ARRAY_UINT8, size);
  gsize length = 0;
  void *into = jsc_value_typed_array_get_data(array, &length);
  if (size > 0) {
    if (into != NULL && length == size) memcpy(into, data, size);
    munmap(data, size);
  }
  if (length != size) {
    g_object_unref(array);
    return throw_error(context, "out of memory for the buffer", name);
  }
  JSCValue *buffer = jsc_value_typed_array_get_buffer(array);
  g_object_unref(array);
  return buffer;
}

/* Only Dokuei's own page gets the function: the app's origin (tauri://localhost, or
 * http://tauri.localhost), and in a build that shows the development server (build.rs defines
 * DOKUEI_DEV_SERVER_PORT from tauri.conf.json's devUrl) that server on loopback. The URI is
 * parsed and its scheme, host and port compared whole: "http://localhost:1@elsewhere/" is
 * elsewhere's page, and so is any other port. */
static gboolean own_page(const char *uri) {
  GUri *parsed = uri ? g_uri_parse(uri, G_URI_FLAGS_NONE, NULL) : NULL;
  if (parsed == NULL) return FALSE;
  const char *scheme = g_uri_get_scheme(parsed);
  const char *host = g_uri_get_host(parsed);
  int port = g_uri_get_port(parsed);
  gboolean own = FALSE;
  if (g_uri_get_userinfo(parsed) == NULL && host != NULL) {
    gboolean http = g_ascii_strcasecmp(scheme, "http") == 0;
    own = (g_ascii_strcasecmp(scheme, "tauri") == 0 && g_ascii_strcasecmp(host, "localhost") == 0 && port == -1) ||
          (http && g_ascii_strcasecmp(host, "tauri.localhost") == 0 && port == -1);
#ifdef DOKUEI_DEV_SERVER_PORT
    own = own || (http && (g_ascii_strcasecmp(host, "localhost") == 0 || g_strcmp0(host, "127.0.0.1") == 0) && port == DOKUEI_DEV_SERVER_PORT);
#endif
  }
  g_uri_unref(parsed);
  return own;
}

static void window_object_cleared(WebKitScriptWorld *world, WebKitWebPage *page, WebKitFrame *frame, gpointer user_data) {
  (void)page;
  (void)user_data;
  if (!webkit_frame_is_main_frame(frame) || !own_page(webkit_frame_get_uri(frame))) return;
  JSCContext *context = webkit_frame_get_js_context_for_script_world(frame, world);
  JSCValue *function = jsc_value_new_function(context, "dokueiShm", G_CALLBACK(dokuei_shm), NULL, NULL, JSC_TYPE_VALUE, 1, G_TYPE_STRING);
  jsc_context_set_value(context, "dokueiShm", function);
  g_object_unref(function);
  g_object_unref(context);
}

G_MODULE_EXPORT void webkit_web_extension_initialize(WebKitWebExtension *extension) {
  (void)extension;
  g_signal_connect(webkit_script_world_get_default(), "window-object-cleared", G_CALLBACK(window_object_cleared), NULL);
}

#ifdef DOKUEI_OWN_PAGE_TEST
/* A test program (built by build.rs, run by src-tauri's tests): prints 1 or 0 per URI given. */
#include <stdio.h>
int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) printf("%d\n", own_page(argv[i]) ? 1 : 0);
  return 0;
}
#endif
