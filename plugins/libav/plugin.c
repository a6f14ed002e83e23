/* plugins/libav/plugin.c - the libav plugin's entry point: its handlers,
 * with their usage, run in the runner processes with FFmpeg's libraries
 * (no ffmpeg program is started).
 *
 * Arguments, for every handler: KEY=VALUE words, NUL-separated (each word
 * ending in NUL, the last one's NUL optional), or, in a call holding no NUL
 * at all, one string of words separated by blanks. cwd=DIR (absolute) is
 * the caller's directory: relative paths are resolved against it, and a
 * relative path in a call without cwd= is an error (`ember call` and
 * `ember run --handler` add cwd= for key=value words). A bad key or value
 * fails the call with EINVAL and a result naming it. */
#include <pthread.h>
#include <libavutil/log.h>
#include "libav.h"

/* Per runner: libav's log routed to the calls' error messages (once per
 * process; each handler's init asks). */
static pthread_once_t log_once = PTHREAD_ONCE_INIT;

static int init(void **ctx)
{
    pthread_once(&log_once, lav_log_setup);
    *ctx = NULL;
    return 0;
}

static const ember_plugin_handler handlers[] = {
    { "transcode", lav_transcode, init, NULL,
      "in=FILE out=FILE height=N [width=N] [crf=N] [preset=NAME] [codec=h264|hevc|mpeg4|vp9|av1] "
      "[audio=auto|copy|aac|none] [threads=1]",
      "scale and re-encode a video (audio copied, AAC or none) into a file published whole" },
    { "thumbnails", lav_thumbnails, init, NULL,
      "in=FILE out=FOLDER every=SECONDS [format=png|jpg] [height=N] [width=N]",
      "a picture of the video every SECONDS, into FOLDER (made if missing)" },
    { "probe", lav_probe, init, NULL, "in=FILE [count=no|yes]",
      "a media file's duration, size, streams, codecs, frame rate and frames, as JSON" },
    { "synth", lav_synth, init, NULL,
      "out=FILE [seconds=2] [width=320] [height=240] [fps=30] [tone=440] [preset=veryfast]",
      "a synthetic clip (a moving picture and a tone) for tests and demos" },
};

static const ember_plugin plugin = {
    .abi = EMBER_PLUGIN_ABI,
    .name = "libav",
    .version = "1",
    .description = "video in the runners with FFmpeg's libraries: transcode, thumbnails, probe",
    .handlers = handlers,
    .nhandlers = sizeof handlers / sizeof handlers[0],
};

__attribute__((visibility("default"))) const ember_plugin *ember_plugin_v1(void)
{
    return &plugin;
}
