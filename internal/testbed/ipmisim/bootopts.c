/*
 * bootopts.c: an ipmi_sim module (lan.conf: loadlib "bootopts.so" "FILE")
 * for the terraform-provider-homelab testbed.
 *
 * Stock ipmi_sim (OpenIPMI 2.0.33) implements Set/Get System Boot Options
 * by passing only the 4-bit boot device selector of parameter 5 to its
 * chassis_control program; the valid, persistent and EFI bits and the other
 * four data bytes are dropped, and a read always reports the flags invalid,
 * one-shot and legacy. This module replaces both commands of the chassis
 * netfn and keeps the parameters the way a BMC does:
 *
 *   - parameter 5 (boot flags, 5 bytes) lives in FILE as five hex bytes on
 *     one line ("80 04 00 00 00"), rewritten atomically on every set and read
 *     on every get, so that other programs (the VM start script, acting as
 *     the firmware) can read and consume it;
 *   - parameters 0-4 and 6 are kept in memory;
 *   - other parameters answer "parameter not supported" (80h).
 *
 * The BMC never clears the valid bit by itself (no 60 s timeout).
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <OpenIPMI/ipmi_msgbits.h>
#include <OpenIPMI/mcserv.h>
#include <OpenIPMI/msg.h>

#define CC_OK 0x00
#define CC_PARAM_NOT_SUPPORTED 0x80
#define CC_INVALID_LENGTH 0xc7
#define CC_INVALID_FIELD 0xcc
#define CC_UNSPECIFIED 0xff

#define BOOT_FLAGS 5
#define BOOT_FLAGS_LEN 5
#define BOOT_INFO_ACK 4
#define MAX_PARAM_LEN 9

/* Length of each parameter's data; 0 means not supported. */
static const unsigned int param_len[] = {
	[0] = 1, /* set in progress */
	[1] = 1, /* service partition selector */
	[2] = 1, /* service partition scan */
	[3] = 1, /* BMC boot flag valid bit clearing */
	[4] = 2, /* boot info acknowledge */
	[5] = BOOT_FLAGS_LEN,
	[6] = 9, /* boot initiator info */
};
#define NPARAMS (sizeof(param_len) / sizeof(param_len[0]))

static unsigned char params[NPARAMS][MAX_PARAM_LEN];
static char *flags_file;

static int read_flags(unsigned char out[BOOT_FLAGS_LEN])
{
	unsigned int b[BOOT_FLAGS_LEN];
	FILE *f;
	int n, i;

	memset(out, 0, BOOT_FLAGS_LEN);
	f = fopen(flags_file, "r");
	if (!f)
		return errno == ENOENT ? 0 : errno;
	n = fscanf(f, "%x %x %x %x %x", &b[0], &b[1], &b[2], &b[3], &b[4]);
	fclose(f);
	if (n != BOOT_FLAGS_LEN)
		return EINVAL;
	for (i = 0; i < BOOT_FLAGS_LEN; i++)
		out[i] = b[i] & 0xff;
	return 0;
}

static int write_flags(const unsigned char in[BOOT_FLAGS_LEN])
{
	size_t len = strlen(flags_file) + 8;
	char *tmp = malloc(len);
	FILE *f;
	int err = 0;

	if (!tmp)
		return ENOMEM;
	snprintf(tmp, len, "%s.tmp", flags_file);
	f = fopen(tmp, "w");
	if (!f) {
		err = errno;
		goto out;
	}
	fprintf(f, "%02x %02x %02x %02x %02x\n", in[0], in[1], in[2], in[3], in[4]);
	if (fclose(f) != 0)
		err = errno;
	else if (rename(tmp, flags_file) != 0)
		err = errno;
out:
	if (err) {
		fprintf(stderr, "bootopts: writing %s: %s\n", flags_file, strerror(err));
		unlink(tmp);
	}
	free(tmp);
	return err;
}

#define REPLY_CC(cc)              \
	do {                      \
		rdata[0] = (cc);  \
		*rdata_len = 1;   \
		return;           \
	} while (0)

static void set_boot_options(lmc_data_t *mc, msg_t *msg, unsigned char *rdata,
			     unsigned int *rdata_len, void *cb_data)
{
	unsigned int p, n;
	const unsigned char *d;

	if (msg->len < 1)
		REPLY_CC(CC_INVALID_LENGTH);
	p = msg->data[0] & 0x7f;
	if (p >= NPARAMS || param_len[p] == 0)
		REPLY_CC(CC_PARAM_NOT_SUPPORTED);
	n = param_len[p];
	if (msg->len < 1 + n)
		REPLY_CC(CC_INVALID_LENGTH);
	d = msg->data + 1;

	switch (p) {
	case 0:
		if ((d[0] & 0x03) == 3)
			REPLY_CC(CC_INVALID_FIELD);
		params[0][0] = d[0] & 0x03;
		break;
	case BOOT_INFO_ACK:
		/* data 1 is a write mask for the acknowledge bits in data 2. */
		params[p][1] = (params[p][1] & ~d[0]) | (d[1] & d[0]);
		break;
	case BOOT_FLAGS:
		if (write_flags(d) != 0)
			REPLY_CC(CC_UNSPECIFIED);
		break;
	default:
		memcpy(params[p], d, n);
	}
	rdata[0] = CC_OK;
	*rdata_len = 1;
}

static void get_boot_options(lmc_data_t *mc, msg_t *msg, unsigned char *rdata,
			     unsigned int *rdata_len, void *cb_data)
{
	unsigned int p, n;

	if (msg->len < 3)
		REPLY_CC(CC_INVALID_LENGTH);
	p = msg->data[0] & 0x7f;
	if (p >= NPARAMS || param_len[p] == 0)
		REPLY_CC(CC_PARAM_NOT_SUPPORTED);
	n = param_len[p];
	rdata[0] = CC_OK;
	rdata[1] = 0x01; /* parameter version */
	rdata[2] = p;	 /* valid/unlocked */
	if (p == BOOT_FLAGS) {
		if (read_flags(rdata + 3) != 0)
			REPLY_CC(CC_UNSPECIFIED);
	} else {
		memcpy(rdata + 3, params[p], n);
	}
	*rdata_len = 3 + n;
}

int ipmi_sim_module_print_version(sys_data_t *sys, char *options)
{
	printf("homelab testbed boot options module 1\n");
	return 0;
}

int ipmi_sim_module_init(sys_data_t *sys, const char *options)
{
	int rv;

	if (!options || !*options) {
		fprintf(stderr, "bootopts: the boot flags file must be given as the module option\n");
		return EINVAL;
	}
	flags_file = strdup(options);
	if (!flags_file)
		return ENOMEM;
	rv = ipmi_emu_register_cmd_handler(IPMI_CHASSIS_NETFN, IPMI_SET_SYSTEM_BOOT_OPTIONS_CMD,
					   set_boot_options, NULL);
	if (!rv)
		rv = ipmi_emu_register_cmd_handler(IPMI_CHASSIS_NETFN, IPMI_GET_SYSTEM_BOOT_OPTIONS_CMD,
						   get_boot_options, NULL);
	return rv;
}
