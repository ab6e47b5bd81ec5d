/* privs.c - running as root only long enough to bind, then as the configured user */
#include "aupd/privs.h"
#include "aupd/log.h"

#define _XOPEN_SOURCE_EXTENDED 1
#include <errno.h>
#include <ftw.h>
#include <grp.h>
#include <pwd.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static uid_t chown_uid;
static gid_t chown_gid;

bool
privs_root(void)
{
	return geteuid() == 0;
}

static int
chown_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	if (lchown(path, chown_uid, chown_gid) < 0)
		return -1;
	return 0;
}

int
privs_drop(const struct config *cfg, struct aupd_error *err)
{
	struct passwd *pw;

	errno = 0;
	pw = getpwnam(cfg->user);
	if (!pw) {
		aupd_error_set(err, "user '%s' (the `user:` setting) does not exist", cfg->user);
		return -1;
	}
	if (pw->pw_uid == 0) {
		aupd_error_set(err, "user '%s' is root: name an unprivileged account", cfg->user);
		return -1;
	}
	if (mkdir_p(cfg->state_dir, 0700, err) < 0)
		return -1;
	chown_uid = pw->pw_uid;
	chown_gid = pw->pw_gid;
	if (nftw(cfg->state_dir, chown_one, 16, FTW_PHYS) != 0) {
		aupd_error_set(err, "cannot give %s to user %s: %s", cfg->state_dir, cfg->user,
			       strerror(errno));
		return -1;
	}
	if (initgroups(pw->pw_name, pw->pw_gid) < 0 || setgid(pw->pw_gid) < 0 ||
	    setuid(pw->pw_uid) < 0) {
		aupd_error_set(err, "cannot switch to user %s: %s", cfg->user, strerror(errno));
		return -1;
	}
	if (setuid(0) == 0 || geteuid() == 0) {
		aupd_error_set(err, "still able to regain root after switching to %s", cfg->user);
		return -1;
	}
	log_notice("running as user %s (uid %u) after binding", cfg->user, (unsigned)pw->pw_uid);
	return 0;
}
