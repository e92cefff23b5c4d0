package restic

// Descriptions of the attributes that say how a repository is reached,
// shared by homelab_restic_repo, homelab_restic_backup and the
// homelab_restic_snapshots data source.
const (
	repositoryDesc = "The repository in restic's own syntax: a path, `sftp:user@host:/path`, `rest:http(s)://host/path/`, `s3:...`, `b2:...`. " +
		"It is stored in state and shown in plans in clear text, so a password in the URL is refused: put rest-server credentials in `environment` as `RESTIC_REST_USERNAME` and `RESTIC_REST_PASSWORD` (for restic older than 0.17, which cannot read them, the provider puts them into the URL restic gets in its environment, never into state or the command line)."
	sshDesc          = "Where restic runs, over SSH. Omit to run restic on the provider's default `ssh.host`, or on the machine running Terraform when the provider names none. Unset attributes fall back to the provider's `ssh` block."
	passwordDesc     = "Repository password. Passed to restic on its standard input, never on the command line."
	passwordFileDesc = "A file holding the repository password, on the host where restic runs (restic's `--password-file`)."
	environmentDesc  = "Environment for restic, for backend credentials (`AWS_ACCESS_KEY_ID`, `B2_ACCOUNT_KEY`, ...). Secret: passed on standard input like the password."
	optionsDesc      = "Extended options, restic's `-o key=value`, e.g. `sftp.command`."
	resticPathDesc   = "Path of the restic binary on the host where it runs. Defaults to `restic` on the PATH."

	// Suffixes of passwordDesc: where each kind of attribute keeps it.
	passwordStoredDesc     = " Stored (sensitive) in state; prefer `password_wo`."
	passwordWODesc         = " Write-only: never stored. Change `password_wo_version` when it changes."
	passwordDataSourceDesc = " Data source inputs are stored in state (sensitive); `password_file` keeps it out."
	passwordWOVersionDesc  = "Any string; change it when `password_wo` changes."
	// repositorySpellingsDesc follows repositoryDesc on homelab_restic_repo.
	repositorySpellingsDesc = " Spellings that restic opens as the same repository (`/srv/r`, `local:/srv/r`, `/srv/r/`; `sftp:host:/p` and `sftp://host//p`; a `rest:` URL with or without its trailing slash) are the same place: changing one into another only updates the state. " +
		"Another place replaces the resource; that is refused while the state has `destroy_data = true` (see `destroy_data`)."
)
