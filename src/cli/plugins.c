/* cli/plugins.c - ember plugins: the handler plugins found by name.
 *
 * Each directory of the search path (ember_plugin_path()) in order, each
 * NAME.so in it, opened and checked by ember_plugin_inspect() (nothing is
 * registered): its description and handlers, or why it cannot be used. A
 * NAME found in an earlier directory hides the later ones: `--plugin NAME`
 * loads the first, and the listing says so. */
#include <dirent.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <ember/plugin.h>
#include "cli.h"

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
        else if (*p == '\n') fputs("\\n", f);
        else if (*p < 0x20) fprintf(f, "\\u%04x", *p);
        else fputc(*p, f);
    }
    fputc('"', f);
}

static int is_plugin_file(const struct dirent *e)
{
    size_t n = strlen(e->d_name);
    return e->d_name[0] != '.' && n > 3 && strcmp(e->d_name + n - 3, ".so") == 0;
}

/* What the listing has seen: the file names, to tell a hidden one. */
struct seen { char **names; size_t n, cap; };

/* Was NAME seen in an earlier directory? Remembers it either way. */
static bool seen_before(struct seen *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->names[i], name) == 0) return true;
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 16;
        char **p = realloc(s->names, cap * sizeof *p);
        if (!p) return false;
        s->names = p, s->cap = cap;
    }
    char *copy = strdup(name);
    if (copy) s->names[s->n++] = copy;
    return false;
}

/* One plugin file PATH (its name NAME.so): its description, or why not. */
static void show(FILE *f, bool json, bool *first, const char *path, const char *file, bool hidden)
{
    const ember_plugin *p;
    int rc = ember_plugin_inspect(path, &p);
    size_t base = strlen(file) - 3;
    if (json) {
        fprintf(f, "%s{\"file\":", *first ? "" : ",");
        json_str(f, path);
        fprintf(f, ",\"hidden\":%s", hidden ? "true" : "false");
        if (rc) {
            fprintf(f, ",\"error\":");
            json_str(f, ember_last_error());
        } else {
            fprintf(f, ",\"name\":");
            json_str(f, p->name);
            fprintf(f, ",\"version\":");
            json_str(f, p->version);
            fprintf(f, ",\"description\":");
            json_str(f, p->description);
            fprintf(f, ",\"handlers\":[");
            for (size_t i = 0; i < p->nhandlers; i++) {
                const ember_plugin_handler *h = &p->handlers[i];
                fprintf(f, "%s{\"name\":", i ? "," : "");
                json_str(f, h->name);
                fprintf(f, ",\"usage\":");
                json_str(f, h->usage);
                fprintf(f, ",\"description\":");
                json_str(f, h->description);
                fprintf(f, ",\"init\":%s}", h->init ? "true" : "false");
            }
            fprintf(f, "]");
        }
        fprintf(f, "}");
        *first = false;
        return;
    }
    if (!*first) fputc('\n', f);
    *first = false;
    if (rc) {
        fprintf(f, "%.*s: cannot be used: %s\n", (int)base, file, ember_last_error());
        return;
    }
    fprintf(f, "%.*s", (int)base, file);
    if (strncmp(p->name, file, base) != 0 || p->name[base]) fprintf(f, " (plugin '%s')", p->name);
    fprintf(f, " %s: %s\n  %s\n", p->version ? p->version : "", p->description ? p->description : "",
            path);
    if (hidden)
        fprintf(f, "  hidden: --plugin %.*s loads the one found before it; give this path to load "
                "this one\n", (int)base, file);
    for (size_t i = 0; i < p->nhandlers; i++) {
        const ember_plugin_handler *h = &p->handlers[i];
        char use[96];
        snprintf(use, sizeof use, "%s%s%s", h->name, h->usage && h->usage[0] ? " " : "",
                 h->usage ? h->usage : "");
        fprintf(f, "  %-28s %s\n", use, h->description ? h->description : "");
    }
}

int cmd_plugins(int argc, char **argv)
{
    bool json = false;
    const struct cli_opt opts[] = { { "json", CLI_FLAG, &json, 0, 0 }, { NULL, 0, NULL, 0, 0 } };
    const char *pos[1];
    int npos, rc = cli_parse_args(argc, argv, opts, pos, 0, &npos);
    if (rc) return rc;
    char dirs[4 * PATH_MAX];
    ember_plugin_path(dirs, sizeof dirs);
    FILE *f = stdout;
    if (json) {
        fprintf(f, "{\"path\":[");
        for (const char *d = dirs; *d;) {
            size_t n = strcspn(d, ":");
            char one[PATH_MAX];
            size_t k = n < sizeof one - 1 ? n : sizeof one - 1;
            memcpy(one, d, k);
            one[k] = 0;
            if (d != dirs) fputc(',', f);
            json_str(f, one);
            d += n + (d[n] == ':');
        }
        fprintf(f, "],\"plugins\":[");
    } else {
        fprintf(f, "search path: %s\n\n", dirs);
    }
    bool first = true;
    struct seen seen = { NULL, 0, 0 };
    for (const char *d = dirs; *d;) {
        size_t n = strcspn(d, ":");
        char dir[PATH_MAX];
        snprintf(dir, sizeof dir, "%.*s", (int)n, d);
        d += n + (d[n] == ':');
        struct dirent **ents;
        int k = scandir(dir, &ents, is_plugin_file, alphasort);
        for (int i = 0; i < k; i++) {
            char path[2 * PATH_MAX];
            snprintf(path, sizeof path, "%s/%s", dir, ents[i]->d_name);
            show(f, json, &first, path, ents[i]->d_name, seen_before(&seen, ents[i]->d_name));
            free(ents[i]);
        }
        if (k >= 0) free(ents);
    }
    if (json) fprintf(f, "]}\n");
    else if (first) fprintf(f, "no plugins found\n");
    for (size_t i = 0; i < seen.n; i++) free(seen.names[i]);
    free(seen.names);
    return 0;
}
