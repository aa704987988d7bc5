# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_authctl_global_optspecs
    string join \n database-url= config= o/output= no-headers y/yes h/help V/version
end

function __fish_authctl_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_authctl_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_authctl_using_subcommand
    set -l cmd (__fish_authctl_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c authctl -n "__fish_authctl_needs_command" -l database-url -d 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db' -r
complete -c authctl -n "__fish_authctl_needs_command" -l config -d 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)' -r -F
complete -c authctl -n "__fish_authctl_needs_command" -s o -l output -d 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)' -r -f -a "table\t'A table for people: one line per row, columns apart by spaces'
wide\t'The table with its extra columns (user agents, expiry, ...)'
json\t'JSON for scripts: the shapes in docs/cli-json.md (camelCase, every key always present)'"
complete -c authctl -n "__fish_authctl_needs_command" -l no-headers -d 'Print tables without their header line'
complete -c authctl -n "__fish_authctl_needs_command" -s y -l yes -d 'Do not ask before destructive actions (required when stdin is not a terminal)'
complete -c authctl -n "__fish_authctl_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c authctl -n "__fish_authctl_needs_command" -s V -l version -d 'Print version'
complete -c authctl -n "__fish_authctl_needs_command" -f -a "serve" -d 'Run the HTTP service (applies pending migrations first)'
complete -c authctl -n "__fish_authctl_needs_command" -f -a "migrate" -d 'Show or apply database migrations'
complete -c authctl -n "__fish_authctl_needs_command" -f -a "users" -d 'List, inspect, create, verify, disable and enable accounts'
complete -c authctl -n "__fish_authctl_needs_command" -f -a "sessions" -d 'List and revoke users\' sessions; prune ended ones'
complete -c authctl -n "__fish_authctl_needs_command" -f -a "verification" -d 'Email verification'
complete -c authctl -n "__fish_authctl_needs_command" -f -a "apikeys" -d 'List and revoke users\' API keys'
complete -c authctl -n "__fish_authctl_needs_command" -f -a "passkeys" -d 'List and remove users\' passkeys'
complete -c authctl -n "__fish_authctl_needs_command" -f -a "scim" -d 'The bearer tokens of SAML providers\' SCIM clients'
complete -c authctl -n "__fish_authctl_needs_command" -f -a "mail" -d 'The mail outbox: deliver queued mail now, or see how much waits'
complete -c authctl -n "__fish_authctl_needs_command" -f -a "deletion" -d 'Scheduled account deletions and the hard-delete sweep'
complete -c authctl -n "__fish_authctl_needs_command" -f -a "audit" -d 'Read the audit log'
complete -c authctl -n "__fish_authctl_needs_command" -f -a "saml" -d 'SAML single sign-on: register identity providers for e-mail domains'
complete -c authctl -n "__fish_authctl_needs_command" -f -a "completions" -d 'Print shell completions, or write every shell\'s file into a folder'
complete -c authctl -n "__fish_authctl_needs_command" -f -a "status" -d 'Which configuration, database, server key and public URL commands here use, and whether the database is reachable and current (exit code 1 when not)'
complete -c authctl -n "__fish_authctl_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c authctl -n "__fish_authctl_using_subcommand serve" -l bind -d 'Address to listen on (default 127.0.0.1:3000)' -r
complete -c authctl -n "__fish_authctl_using_subcommand serve" -l public-url -d 'The URL users reach the service at; used in mailed links (default http://localhost:3000)' -r
complete -c authctl -n "__fish_authctl_using_subcommand serve" -l database-url -d 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db' -r
complete -c authctl -n "__fish_authctl_using_subcommand serve" -l config -d 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)' -r -F
complete -c authctl -n "__fish_authctl_using_subcommand serve" -s o -l output -d 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)' -r -f -a "table\t'A table for people: one line per row, columns apart by spaces'
wide\t'The table with its extra columns (user agents, expiry, ...)'
json\t'JSON for scripts: the shapes in docs/cli-json.md (camelCase, every key always present)'"
complete -c authctl -n "__fish_authctl_using_subcommand serve" -l no-headers -d 'Print tables without their header line'
complete -c authctl -n "__fish_authctl_using_subcommand serve" -s y -l yes -d 'Do not ask before destructive actions (required when stdin is not a terminal)'
complete -c authctl -n "__fish_authctl_using_subcommand serve" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c authctl -n "__fish_authctl_using_subcommand serve" -s V -l version -d 'Print version'
complete -c authctl -n "__fish_authctl_using_subcommand migrate; and not __fish_seen_subcommand_from status up help" -l database-url -d 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db' -r
complete -c authctl -n "__fish_authctl_using_subcommand migrate; and not __fish_seen_subcommand_from status up help" -l config -d 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)' -r -F
complete -c authctl -n "__fish_authctl_using_subcommand migrate; and not __fish_seen_subcommand_from status up help" -s o -l output -d 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)' -r -f -a "table\t'A table for people: one line per row, columns apart by spaces'
wide\t'The table with its extra columns (user agents, expiry, ...)'
json\t'JSON for scripts: the shapes in docs/cli-json.md (camelCase, every key always present)'"
complete -c authctl -n "__fish_authctl_using_subcommand migrate; and not __fish_seen_subcommand_from status up help" -l no-headers -d 'Print tables without their header line'
complete -c authctl -n "__fish_authctl_using_subcommand migrate; and not __fish_seen_subcommand_from status up help" -s y -l yes -d 'Do not ask before destructive actions (required when stdin is not a terminal)'
complete -c authctl -n "__fish_authctl_using_subcommand migrate; and not __fish_seen_subcommand_from status up help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c authctl -n "__fish_authctl_using_subcommand migrate; and not __fish_seen_subcommand_from status up help" -s V -l version -d 'Print version'
complete -c authctl -n "__fish_authctl_using_subcommand migrate; and not __fish_seen_subcommand_from status up help" -f -a "status" -d 'Show which migrations are applied (the default)'
complete -c authctl -n "__fish_authctl_using_subcommand migrate; and not __fish_seen_subcommand_from status up help" -f -a "up" -d 'Apply every pending migration'
complete -c authctl -n "__fish_authctl_using_subcommand migrate; and not __fish_seen_subcommand_from status up help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c authctl -n "__fish_authctl_using_subcommand migrate; and __fish_seen_subcommand_from status" -l database-url -d 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db' -r
complete -c authctl -n "__fish_authctl_using_subcommand migrate; and __fish_seen_subcommand_from status" -l config -d 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)' -r -F
complete -c authctl -n "__fish_authctl_using_subcommand migrate; and __fish_seen_subcommand_from status" -s o -l output -d 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)' -r -f -a "table\t'A table for people: one line per row, columns apart by spaces'
wide\t'The table with its extra columns (user agents, expiry, ...)'
json\t'JSON for scripts: the shapes in docs/cli-json.md (camelCase, every key always present)'"
complete -c authctl -n "__fish_authctl_using_subcommand migrate; and __fish_seen_subcommand_from status" -l no-headers -d 'Print tables without their header line'
complete -c authctl -n "__fish_authctl_using_subcommand migrate; and __fish_seen_subcommand_from status" -s y -l yes -d 'Do not ask before destructive actions (required when stdin is not a terminal)'
complete -c authctl -n "__fish_authctl_using_subcommand migrate; and __fish_seen_subcommand_from status" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c authctl -n "__fish_authctl_using_subcommand migrate; and __fish_seen_subcommand_from status" -s V -l version -d 'Print version'
complete -c authctl -n "__fish_authctl_using_subcommand migrate; and __fish_seen_subcommand_from up" -l database-url -d 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db' -r
complete -c authctl -n "__fish_authctl_using_subcommand migrate; and __fish_seen_subcommand_from up" -l config -d 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)' -r -F
complete -c authctl -n "__fish_authctl_using_subcommand migrate; and __fish_seen_subcommand_from up" -s o -l output -d 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)' -r -f -a "table\t'A table for people: one line per row, columns apart by spaces'
wide\t'The table with its extra columns (user agents, expiry, ...)'
json\t'JSON for scripts: the shapes in docs/cli-json.md (camelCase, every key always present)'"
complete -c authctl -n "__fish_authctl_using_subcommand migrate; and __fish_seen_subcommand_from up" -l no-headers -d 'Print tables without their header line'
complete -c authctl -n "__fish_authctl_using_subcommand migrate; and __fish_seen_subcommand_from up" -s y -l yes -d 'Do not ask before destructive actions (required when stdin is not a terminal)'
complete -c authctl -n "__fish_authctl_using_subcommand migrate; and __fish_seen_subcommand_from up" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c authctl -n "__fish_authctl_using_subcommand migrate; and __fish_seen_subcommand_from up" -s V -l version -d 'Print version'
complete -c authctl -n "__fish_authctl_using_subcommand migrate; and __fish_seen_subcommand_from help" -f -a "status" -d 'Show which migrations are applied (the default)'
complete -c authctl -n "__fish_authctl_using_subcommand migrate; and __fish_seen_subcommand_from help" -f -a "up" -d 'Apply every pending migration'
complete -c authctl -n "__fish_authctl_using_subcommand migrate; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c authctl -n "__fish_authctl_using_subcommand users; and not __fish_seen_subcommand_from list show create verify disable enable history help" -l database-url -d 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db' -r
complete -c authctl -n "__fish_authctl_using_subcommand users; and not __fish_seen_subcommand_from list show create verify disable enable history help" -l config -d 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)' -r -F
complete -c authctl -n "__fish_authctl_using_subcommand users; and not __fish_seen_subcommand_from list show create verify disable enable history help" -s o -l output -d 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)' -r -f -a "table\t'A table for people: one line per row, columns apart by spaces'
wide\t'The table with its extra columns (user agents, expiry, ...)'
json\t'JSON for scripts: the shapes in docs/cli-json.md (camelCase, every key always present)'"
complete -c authctl -n "__fish_authctl_using_subcommand users; and not __fish_seen_subcommand_from list show create verify disable enable history help" -l no-headers -d 'Print tables without their header line'
complete -c authctl -n "__fish_authctl_using_subcommand users; and not __fish_seen_subcommand_from list show create verify disable enable history help" -s y -l yes -d 'Do not ask before destructive actions (required when stdin is not a terminal)'
complete -c authctl -n "__fish_authctl_using_subcommand users; and not __fish_seen_subcommand_from list show create verify disable enable history help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c authctl -n "__fish_authctl_using_subcommand users; and not __fish_seen_subcommand_from list show create verify disable enable history help" -s V -l version -d 'Print version'
complete -c authctl -n "__fish_authctl_using_subcommand users; and not __fish_seen_subcommand_from list show create verify disable enable history help" -f -a "list" -d 'List accounts, oldest first'
complete -c authctl -n "__fish_authctl_using_subcommand users; and not __fish_seen_subcommand_from list show create verify disable enable history help" -f -a "show" -d 'Show one account, by address or by id'
complete -c authctl -n "__fish_authctl_using_subcommand users; and not __fish_seen_subcommand_from list show create verify disable enable history help" -f -a "create" -d 'Create an account. Prompts for a password on a terminal'
complete -c authctl -n "__fish_authctl_using_subcommand users; and not __fish_seen_subcommand_from list show create verify disable enable history help" -f -a "verify" -d 'Mark an address as verified without a link'
complete -c authctl -n "__fish_authctl_using_subcommand users; and not __fish_seen_subcommand_from list show create verify disable enable history help" -f -a "disable" -d 'Disable an account; its sessions end at once. Asks first (or pass --yes)'
complete -c authctl -n "__fish_authctl_using_subcommand users; and not __fish_seen_subcommand_from list show create verify disable enable history help" -f -a "enable" -d 'Enable a disabled account'
complete -c authctl -n "__fish_authctl_using_subcommand users; and not __fish_seen_subcommand_from list show create verify disable enable history help" -f -a "history" -d 'Show an account\'s login history, newest first'
complete -c authctl -n "__fish_authctl_using_subcommand users; and not __fish_seen_subcommand_from list show create verify disable enable history help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c authctl -n "__fish_authctl_using_subcommand users; and __fish_seen_subcommand_from list" -l limit -d 'At most N rows (default: 100 when stdout is a terminal, every row otherwise)' -r
complete -c authctl -n "__fish_authctl_using_subcommand users; and __fish_seen_subcommand_from list" -l after -d 'Start after the row with this id: the last id of the previous page' -r
complete -c authctl -n "__fish_authctl_using_subcommand users; and __fish_seen_subcommand_from list" -l database-url -d 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db' -r
complete -c authctl -n "__fish_authctl_using_subcommand users; and __fish_seen_subcommand_from list" -l config -d 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)' -r -F
complete -c authctl -n "__fish_authctl_using_subcommand users; and __fish_seen_subcommand_from list" -s o -l output -d 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)' -r -f -a "table\t'A table for people: one line per row, columns apart by spaces'
wide\t'The table with its extra columns (user agents, expiry, ...)'
json\t'JSON for scripts: the shapes in docs/cli-json.md (camelCase, every key always present)'"
complete -c authctl -n "__fish_authctl_using_subcommand users; and __fish_seen_subcommand_from list" -l unverified -d 'Only accounts whose address is not verified'
complete -c authctl -n "__fish_authctl_using_subcommand users; and __fish_seen_subcommand_from list" -l no-headers -d 'Print tables without their header line'
complete -c authctl -n "__fish_authctl_using_subcommand users; and __fish_seen_subcommand_from list" -s y -l yes -d 'Do not ask before destructive actions (required when stdin is not a terminal)'
complete -c authctl -n "__fish_authctl_using_subcommand users; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c authctl -n "__fish_authctl_using_subcommand users; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c authctl -n "__fish_authctl_using_subcommand users; and __fish_seen_subcommand_from show" -l database-url -d 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db' -r
complete -c authctl -n "__fish_authctl_using_subcommand users; and __fish_seen_subcommand_from show" -l config -d 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)' -r -F
complete -c authctl -n "__fish_authctl_using_subcommand users; and __fish_seen_subcommand_from show" -s o -l output -d 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)' -r -f -a "table\t'A table for people: one line per row, columns apart by spaces'
wide\t'The table with its extra columns (user agents, expiry, ...)'
json\t'JSON for scripts: the shapes in docs/cli-json.md (camelCase, every key always present)'"
complete -c authctl -n "__fish_authctl_using_subcommand users; and __fish_seen_subcommand_from show" -l no-headers -d 'Print tables without their header line'
complete -c authctl -n "__fish_authctl_using_subcommand users; and __fish_seen_subcommand_from show" -s y -l yes -d 'Do not ask before destructive actions (required when stdin is not a terminal)'
complete -c authctl -n "__fish_authctl_using_subcommand users; and __fish_seen_subcommand_from show" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c authctl -n "__fish_authctl_using_subcommand users; and __fish_seen_subcommand_from show" -s V -l version -d 'Print version'
complete -c authctl -n "__fish_authctl_using_subcommand users; and __fish_seen_subcommand_from create" -l name -d 'Display name' -r
complete -c authctl -n "__fish_authctl_using_subcommand users; and __fish_seen_subcommand_from create" -l database-url -d 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db' -r
complete -c authctl -n "__fish_authctl_using_subcommand users; and __fish_seen_subcommand_from create" -l config -d 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)' -r -F
complete -c authctl -n "__fish_authctl_using_subcommand users; and __fish_seen_subcommand_from create" -s o -l output -d 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)' -r -f -a "table\t'A table for people: one line per row, columns apart by spaces'
wide\t'The table with its extra columns (user agents, expiry, ...)'
json\t'JSON for scripts: the shapes in docs/cli-json.md (camelCase, every key always present)'"
complete -c authctl -n "__fish_authctl_using_subcommand users; and __fish_seen_subcommand_from create" -l verified -d 'Mark the address as verified. Without it, the address is mailed a verification link'
complete -c authctl -n "__fish_authctl_using_subcommand users; and __fish_seen_subcommand_from create" -l password-stdin -d 'Read the password from the first line of stdin (for scripts)'
complete -c authctl -n "__fish_authctl_using_subcommand users; and __fish_seen_subcommand_from create" -l no-password -d 'Create the account without a password (it cannot sign in with one until it gets one)'
complete -c authctl -n "__fish_authctl_using_subcommand users; and __fish_seen_subcommand_from create" -l no-headers -d 'Print tables without their header line'
complete -c authctl -n "__fish_authctl_using_subcommand users; and __fish_seen_subcommand_from create" -s y -l yes -d 'Do not ask before destructive actions (required when stdin is not a terminal)'
complete -c authctl -n "__fish_authctl_using_subcommand users; and __fish_seen_subcommand_from create" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c authctl -n "__fish_authctl_using_subcommand users; and __fish_seen_subcommand_from create" -s V -l version -d 'Print version'
complete -c authctl -n "__fish_authctl_using_subcommand users; and __fish_seen_subcommand_from verify" -l database-url -d 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db' -r
complete -c authctl -n "__fish_authctl_using_subcommand users; and __fish_seen_subcommand_from verify" -l config -d 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)' -r -F
complete -c authctl -n "__fish_authctl_using_subcommand users; and __fish_seen_subcommand_from verify" -s o -l output -d 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)' -r -f -a "table\t'A table for people: one line per row, columns apart by spaces'
wide\t'The table with its extra columns (user agents, expiry, ...)'
json\t'JSON for scripts: the shapes in docs/cli-json.md (camelCase, every key always present)'"
complete -c authctl -n "__fish_authctl_using_subcommand users; and __fish_seen_subcommand_from verify" -l no-headers -d 'Print tables without their header line'
complete -c authctl -n "__fish_authctl_using_subcommand users; and __fish_seen_subcommand_from verify" -s y -l yes -d 'Do not ask before destructive actions (required when stdin is not a terminal)'
complete -c authctl -n "__fish_authctl_using_subcommand users; and __fish_seen_subcommand_from verify" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c authctl -n "__fish_authctl_using_subcommand users; and __fish_seen_subcommand_from verify" -s V -l version -d 'Print version'
complete -c authctl -n "__fish_authctl_using_subcommand users; and __fish_seen_subcommand_from disable" -l database-url -d 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db' -r
complete -c authctl -n "__fish_authctl_using_subcommand users; and __fish_seen_subcommand_from disable" -l config -d 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)' -r -F
complete -c authctl -n "__fish_authctl_using_subcommand users; and __fish_seen_subcommand_from disable" -s o -l output -d 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)' -r -f -a "table\t'A table for people: one line per row, columns apart by spaces'
wide\t'The table with its extra columns (user agents, expiry, ...)'
json\t'JSON for scripts: the shapes in docs/cli-json.md (camelCase, every key always present)'"
complete -c authctl -n "__fish_authctl_using_subcommand users; and __fish_seen_subcommand_from disable" -l no-headers -d 'Print tables without their header line'
complete -c authctl -n "__fish_authctl_using_subcommand users; and __fish_seen_subcommand_from disable" -s y -l yes -d 'Do not ask before destructive actions (required when stdin is not a terminal)'
complete -c authctl -n "__fish_authctl_using_subcommand users; and __fish_seen_subcommand_from disable" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c authctl -n "__fish_authctl_using_subcommand users; and __fish_seen_subcommand_from disable" -s V -l version -d 'Print version'
complete -c authctl -n "__fish_authctl_using_subcommand users; and __fish_seen_subcommand_from enable" -l database-url -d 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db' -r
complete -c authctl -n "__fish_authctl_using_subcommand users; and __fish_seen_subcommand_from enable" -l config -d 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)' -r -F
complete -c authctl -n "__fish_authctl_using_subcommand users; and __fish_seen_subcommand_from enable" -s o -l output -d 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)' -r -f -a "table\t'A table for people: one line per row, columns apart by spaces'
wide\t'The table with its extra columns (user agents, expiry, ...)'
json\t'JSON for scripts: the shapes in docs/cli-json.md (camelCase, every key always present)'"
complete -c authctl -n "__fish_authctl_using_subcommand users; and __fish_seen_subcommand_from enable" -l no-headers -d 'Print tables without their header line'
complete -c authctl -n "__fish_authctl_using_subcommand users; and __fish_seen_subcommand_from enable" -s y -l yes -d 'Do not ask before destructive actions (required when stdin is not a terminal)'
complete -c authctl -n "__fish_authctl_using_subcommand users; and __fish_seen_subcommand_from enable" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c authctl -n "__fish_authctl_using_subcommand users; and __fish_seen_subcommand_from enable" -s V -l version -d 'Print version'
complete -c authctl -n "__fish_authctl_using_subcommand users; and __fish_seen_subcommand_from history" -l limit -d 'How many attempts to show' -r
complete -c authctl -n "__fish_authctl_using_subcommand users; and __fish_seen_subcommand_from history" -l database-url -d 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db' -r
complete -c authctl -n "__fish_authctl_using_subcommand users; and __fish_seen_subcommand_from history" -l config -d 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)' -r -F
complete -c authctl -n "__fish_authctl_using_subcommand users; and __fish_seen_subcommand_from history" -s o -l output -d 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)' -r -f -a "table\t'A table for people: one line per row, columns apart by spaces'
wide\t'The table with its extra columns (user agents, expiry, ...)'
json\t'JSON for scripts: the shapes in docs/cli-json.md (camelCase, every key always present)'"
complete -c authctl -n "__fish_authctl_using_subcommand users; and __fish_seen_subcommand_from history" -l no-headers -d 'Print tables without their header line'
complete -c authctl -n "__fish_authctl_using_subcommand users; and __fish_seen_subcommand_from history" -s y -l yes -d 'Do not ask before destructive actions (required when stdin is not a terminal)'
complete -c authctl -n "__fish_authctl_using_subcommand users; and __fish_seen_subcommand_from history" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c authctl -n "__fish_authctl_using_subcommand users; and __fish_seen_subcommand_from history" -s V -l version -d 'Print version'
complete -c authctl -n "__fish_authctl_using_subcommand users; and __fish_seen_subcommand_from help" -f -a "list" -d 'List accounts, oldest first'
complete -c authctl -n "__fish_authctl_using_subcommand users; and __fish_seen_subcommand_from help" -f -a "show" -d 'Show one account, by address or by id'
complete -c authctl -n "__fish_authctl_using_subcommand users; and __fish_seen_subcommand_from help" -f -a "create" -d 'Create an account. Prompts for a password on a terminal'
complete -c authctl -n "__fish_authctl_using_subcommand users; and __fish_seen_subcommand_from help" -f -a "verify" -d 'Mark an address as verified without a link'
complete -c authctl -n "__fish_authctl_using_subcommand users; and __fish_seen_subcommand_from help" -f -a "disable" -d 'Disable an account; its sessions end at once. Asks first (or pass --yes)'
complete -c authctl -n "__fish_authctl_using_subcommand users; and __fish_seen_subcommand_from help" -f -a "enable" -d 'Enable a disabled account'
complete -c authctl -n "__fish_authctl_using_subcommand users; and __fish_seen_subcommand_from help" -f -a "history" -d 'Show an account\'s login history, newest first'
complete -c authctl -n "__fish_authctl_using_subcommand users; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c authctl -n "__fish_authctl_using_subcommand sessions; and not __fish_seen_subcommand_from list revoke prune help" -l database-url -d 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db' -r
complete -c authctl -n "__fish_authctl_using_subcommand sessions; and not __fish_seen_subcommand_from list revoke prune help" -l config -d 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)' -r -F
complete -c authctl -n "__fish_authctl_using_subcommand sessions; and not __fish_seen_subcommand_from list revoke prune help" -s o -l output -d 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)' -r -f -a "table\t'A table for people: one line per row, columns apart by spaces'
wide\t'The table with its extra columns (user agents, expiry, ...)'
json\t'JSON for scripts: the shapes in docs/cli-json.md (camelCase, every key always present)'"
complete -c authctl -n "__fish_authctl_using_subcommand sessions; and not __fish_seen_subcommand_from list revoke prune help" -l no-headers -d 'Print tables without their header line'
complete -c authctl -n "__fish_authctl_using_subcommand sessions; and not __fish_seen_subcommand_from list revoke prune help" -s y -l yes -d 'Do not ask before destructive actions (required when stdin is not a terminal)'
complete -c authctl -n "__fish_authctl_using_subcommand sessions; and not __fish_seen_subcommand_from list revoke prune help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c authctl -n "__fish_authctl_using_subcommand sessions; and not __fish_seen_subcommand_from list revoke prune help" -s V -l version -d 'Print version'
complete -c authctl -n "__fish_authctl_using_subcommand sessions; and not __fish_seen_subcommand_from list revoke prune help" -f -a "list" -d 'List an account\'s live sessions, newest first'
complete -c authctl -n "__fish_authctl_using_subcommand sessions; and not __fish_seen_subcommand_from list revoke prune help" -f -a "revoke" -d 'Revoke one session by id, or every session of a user (`--user EMAIL --all`, asks first)'
complete -c authctl -n "__fish_authctl_using_subcommand sessions; and not __fish_seen_subcommand_from list revoke prune help" -f -a "prune" -d 'Delete ended sessions, spent verification tokens and stale throttle rows now'
complete -c authctl -n "__fish_authctl_using_subcommand sessions; and not __fish_seen_subcommand_from list revoke prune help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c authctl -n "__fish_authctl_using_subcommand sessions; and __fish_seen_subcommand_from list" -l user -d 'The account, by address or id' -r
complete -c authctl -n "__fish_authctl_using_subcommand sessions; and __fish_seen_subcommand_from list" -l limit -d 'At most N rows (default: 100 when stdout is a terminal, every row otherwise)' -r
complete -c authctl -n "__fish_authctl_using_subcommand sessions; and __fish_seen_subcommand_from list" -l after -d 'Start after the row with this id: the last id of the previous page' -r
complete -c authctl -n "__fish_authctl_using_subcommand sessions; and __fish_seen_subcommand_from list" -l database-url -d 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db' -r
complete -c authctl -n "__fish_authctl_using_subcommand sessions; and __fish_seen_subcommand_from list" -l config -d 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)' -r -F
complete -c authctl -n "__fish_authctl_using_subcommand sessions; and __fish_seen_subcommand_from list" -s o -l output -d 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)' -r -f -a "table\t'A table for people: one line per row, columns apart by spaces'
wide\t'The table with its extra columns (user agents, expiry, ...)'
json\t'JSON for scripts: the shapes in docs/cli-json.md (camelCase, every key always present)'"
complete -c authctl -n "__fish_authctl_using_subcommand sessions; and __fish_seen_subcommand_from list" -l no-headers -d 'Print tables without their header line'
complete -c authctl -n "__fish_authctl_using_subcommand sessions; and __fish_seen_subcommand_from list" -s y -l yes -d 'Do not ask before destructive actions (required when stdin is not a terminal)'
complete -c authctl -n "__fish_authctl_using_subcommand sessions; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c authctl -n "__fish_authctl_using_subcommand sessions; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c authctl -n "__fish_authctl_using_subcommand sessions; and __fish_seen_subcommand_from revoke" -l user -d 'The account whose sessions end (with --all), by address or id' -r
complete -c authctl -n "__fish_authctl_using_subcommand sessions; and __fish_seen_subcommand_from revoke" -l database-url -d 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db' -r
complete -c authctl -n "__fish_authctl_using_subcommand sessions; and __fish_seen_subcommand_from revoke" -l config -d 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)' -r -F
complete -c authctl -n "__fish_authctl_using_subcommand sessions; and __fish_seen_subcommand_from revoke" -s o -l output -d 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)' -r -f -a "table\t'A table for people: one line per row, columns apart by spaces'
wide\t'The table with its extra columns (user agents, expiry, ...)'
json\t'JSON for scripts: the shapes in docs/cli-json.md (camelCase, every key always present)'"
complete -c authctl -n "__fish_authctl_using_subcommand sessions; and __fish_seen_subcommand_from revoke" -l all -d 'End every session of --user'
complete -c authctl -n "__fish_authctl_using_subcommand sessions; and __fish_seen_subcommand_from revoke" -l no-headers -d 'Print tables without their header line'
complete -c authctl -n "__fish_authctl_using_subcommand sessions; and __fish_seen_subcommand_from revoke" -s y -l yes -d 'Do not ask before destructive actions (required when stdin is not a terminal)'
complete -c authctl -n "__fish_authctl_using_subcommand sessions; and __fish_seen_subcommand_from revoke" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c authctl -n "__fish_authctl_using_subcommand sessions; and __fish_seen_subcommand_from revoke" -s V -l version -d 'Print version'
complete -c authctl -n "__fish_authctl_using_subcommand sessions; and __fish_seen_subcommand_from prune" -l database-url -d 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db' -r
complete -c authctl -n "__fish_authctl_using_subcommand sessions; and __fish_seen_subcommand_from prune" -l config -d 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)' -r -F
complete -c authctl -n "__fish_authctl_using_subcommand sessions; and __fish_seen_subcommand_from prune" -s o -l output -d 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)' -r -f -a "table\t'A table for people: one line per row, columns apart by spaces'
wide\t'The table with its extra columns (user agents, expiry, ...)'
json\t'JSON for scripts: the shapes in docs/cli-json.md (camelCase, every key always present)'"
complete -c authctl -n "__fish_authctl_using_subcommand sessions; and __fish_seen_subcommand_from prune" -l no-headers -d 'Print tables without their header line'
complete -c authctl -n "__fish_authctl_using_subcommand sessions; and __fish_seen_subcommand_from prune" -s y -l yes -d 'Do not ask before destructive actions (required when stdin is not a terminal)'
complete -c authctl -n "__fish_authctl_using_subcommand sessions; and __fish_seen_subcommand_from prune" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c authctl -n "__fish_authctl_using_subcommand sessions; and __fish_seen_subcommand_from prune" -s V -l version -d 'Print version'
complete -c authctl -n "__fish_authctl_using_subcommand sessions; and __fish_seen_subcommand_from help" -f -a "list" -d 'List an account\'s live sessions, newest first'
complete -c authctl -n "__fish_authctl_using_subcommand sessions; and __fish_seen_subcommand_from help" -f -a "revoke" -d 'Revoke one session by id, or every session of a user (`--user EMAIL --all`, asks first)'
complete -c authctl -n "__fish_authctl_using_subcommand sessions; and __fish_seen_subcommand_from help" -f -a "prune" -d 'Delete ended sessions, spent verification tokens and stale throttle rows now'
complete -c authctl -n "__fish_authctl_using_subcommand sessions; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c authctl -n "__fish_authctl_using_subcommand verification; and not __fish_seen_subcommand_from resend help" -l database-url -d 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db' -r
complete -c authctl -n "__fish_authctl_using_subcommand verification; and not __fish_seen_subcommand_from resend help" -l config -d 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)' -r -F
complete -c authctl -n "__fish_authctl_using_subcommand verification; and not __fish_seen_subcommand_from resend help" -s o -l output -d 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)' -r -f -a "table\t'A table for people: one line per row, columns apart by spaces'
wide\t'The table with its extra columns (user agents, expiry, ...)'
json\t'JSON for scripts: the shapes in docs/cli-json.md (camelCase, every key always present)'"
complete -c authctl -n "__fish_authctl_using_subcommand verification; and not __fish_seen_subcommand_from resend help" -l no-headers -d 'Print tables without their header line'
complete -c authctl -n "__fish_authctl_using_subcommand verification; and not __fish_seen_subcommand_from resend help" -s y -l yes -d 'Do not ask before destructive actions (required when stdin is not a terminal)'
complete -c authctl -n "__fish_authctl_using_subcommand verification; and not __fish_seen_subcommand_from resend help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c authctl -n "__fish_authctl_using_subcommand verification; and not __fish_seen_subcommand_from resend help" -s V -l version -d 'Print version'
complete -c authctl -n "__fish_authctl_using_subcommand verification; and not __fish_seen_subcommand_from resend help" -f -a "resend" -d 'Send a new verification link to an unverified account'
complete -c authctl -n "__fish_authctl_using_subcommand verification; and not __fish_seen_subcommand_from resend help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c authctl -n "__fish_authctl_using_subcommand verification; and __fish_seen_subcommand_from resend" -l database-url -d 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db' -r
complete -c authctl -n "__fish_authctl_using_subcommand verification; and __fish_seen_subcommand_from resend" -l config -d 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)' -r -F
complete -c authctl -n "__fish_authctl_using_subcommand verification; and __fish_seen_subcommand_from resend" -s o -l output -d 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)' -r -f -a "table\t'A table for people: one line per row, columns apart by spaces'
wide\t'The table with its extra columns (user agents, expiry, ...)'
json\t'JSON for scripts: the shapes in docs/cli-json.md (camelCase, every key always present)'"
complete -c authctl -n "__fish_authctl_using_subcommand verification; and __fish_seen_subcommand_from resend" -l no-headers -d 'Print tables without their header line'
complete -c authctl -n "__fish_authctl_using_subcommand verification; and __fish_seen_subcommand_from resend" -s y -l yes -d 'Do not ask before destructive actions (required when stdin is not a terminal)'
complete -c authctl -n "__fish_authctl_using_subcommand verification; and __fish_seen_subcommand_from resend" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c authctl -n "__fish_authctl_using_subcommand verification; and __fish_seen_subcommand_from resend" -s V -l version -d 'Print version'
complete -c authctl -n "__fish_authctl_using_subcommand verification; and __fish_seen_subcommand_from help" -f -a "resend" -d 'Send a new verification link to an unverified account'
complete -c authctl -n "__fish_authctl_using_subcommand verification; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c authctl -n "__fish_authctl_using_subcommand apikeys; and not __fish_seen_subcommand_from list revoke help" -l database-url -d 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db' -r
complete -c authctl -n "__fish_authctl_using_subcommand apikeys; and not __fish_seen_subcommand_from list revoke help" -l config -d 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)' -r -F
complete -c authctl -n "__fish_authctl_using_subcommand apikeys; and not __fish_seen_subcommand_from list revoke help" -s o -l output -d 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)' -r -f -a "table\t'A table for people: one line per row, columns apart by spaces'
wide\t'The table with its extra columns (user agents, expiry, ...)'
json\t'JSON for scripts: the shapes in docs/cli-json.md (camelCase, every key always present)'"
complete -c authctl -n "__fish_authctl_using_subcommand apikeys; and not __fish_seen_subcommand_from list revoke help" -l no-headers -d 'Print tables without their header line'
complete -c authctl -n "__fish_authctl_using_subcommand apikeys; and not __fish_seen_subcommand_from list revoke help" -s y -l yes -d 'Do not ask before destructive actions (required when stdin is not a terminal)'
complete -c authctl -n "__fish_authctl_using_subcommand apikeys; and not __fish_seen_subcommand_from list revoke help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c authctl -n "__fish_authctl_using_subcommand apikeys; and not __fish_seen_subcommand_from list revoke help" -s V -l version -d 'Print version'
complete -c authctl -n "__fish_authctl_using_subcommand apikeys; and not __fish_seen_subcommand_from list revoke help" -f -a "list" -d 'List an account\'s API keys, newest first (never the secrets)'
complete -c authctl -n "__fish_authctl_using_subcommand apikeys; and not __fish_seen_subcommand_from list revoke help" -f -a "revoke" -d 'Revoke an API key by id; it fails on its very next request'
complete -c authctl -n "__fish_authctl_using_subcommand apikeys; and not __fish_seen_subcommand_from list revoke help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c authctl -n "__fish_authctl_using_subcommand apikeys; and __fish_seen_subcommand_from list" -l user -d 'The account, by address or id' -r
complete -c authctl -n "__fish_authctl_using_subcommand apikeys; and __fish_seen_subcommand_from list" -l limit -d 'At most N rows (default: 100 when stdout is a terminal, every row otherwise)' -r
complete -c authctl -n "__fish_authctl_using_subcommand apikeys; and __fish_seen_subcommand_from list" -l after -d 'Start after the row with this id: the last id of the previous page' -r
complete -c authctl -n "__fish_authctl_using_subcommand apikeys; and __fish_seen_subcommand_from list" -l database-url -d 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db' -r
complete -c authctl -n "__fish_authctl_using_subcommand apikeys; and __fish_seen_subcommand_from list" -l config -d 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)' -r -F
complete -c authctl -n "__fish_authctl_using_subcommand apikeys; and __fish_seen_subcommand_from list" -s o -l output -d 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)' -r -f -a "table\t'A table for people: one line per row, columns apart by spaces'
wide\t'The table with its extra columns (user agents, expiry, ...)'
json\t'JSON for scripts: the shapes in docs/cli-json.md (camelCase, every key always present)'"
complete -c authctl -n "__fish_authctl_using_subcommand apikeys; and __fish_seen_subcommand_from list" -l no-headers -d 'Print tables without their header line'
complete -c authctl -n "__fish_authctl_using_subcommand apikeys; and __fish_seen_subcommand_from list" -s y -l yes -d 'Do not ask before destructive actions (required when stdin is not a terminal)'
complete -c authctl -n "__fish_authctl_using_subcommand apikeys; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c authctl -n "__fish_authctl_using_subcommand apikeys; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c authctl -n "__fish_authctl_using_subcommand apikeys; and __fish_seen_subcommand_from revoke" -l database-url -d 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db' -r
complete -c authctl -n "__fish_authctl_using_subcommand apikeys; and __fish_seen_subcommand_from revoke" -l config -d 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)' -r -F
complete -c authctl -n "__fish_authctl_using_subcommand apikeys; and __fish_seen_subcommand_from revoke" -s o -l output -d 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)' -r -f -a "table\t'A table for people: one line per row, columns apart by spaces'
wide\t'The table with its extra columns (user agents, expiry, ...)'
json\t'JSON for scripts: the shapes in docs/cli-json.md (camelCase, every key always present)'"
complete -c authctl -n "__fish_authctl_using_subcommand apikeys; and __fish_seen_subcommand_from revoke" -l no-headers -d 'Print tables without their header line'
complete -c authctl -n "__fish_authctl_using_subcommand apikeys; and __fish_seen_subcommand_from revoke" -s y -l yes -d 'Do not ask before destructive actions (required when stdin is not a terminal)'
complete -c authctl -n "__fish_authctl_using_subcommand apikeys; and __fish_seen_subcommand_from revoke" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c authctl -n "__fish_authctl_using_subcommand apikeys; and __fish_seen_subcommand_from revoke" -s V -l version -d 'Print version'
complete -c authctl -n "__fish_authctl_using_subcommand apikeys; and __fish_seen_subcommand_from help" -f -a "list" -d 'List an account\'s API keys, newest first (never the secrets)'
complete -c authctl -n "__fish_authctl_using_subcommand apikeys; and __fish_seen_subcommand_from help" -f -a "revoke" -d 'Revoke an API key by id; it fails on its very next request'
complete -c authctl -n "__fish_authctl_using_subcommand apikeys; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c authctl -n "__fish_authctl_using_subcommand passkeys; and not __fish_seen_subcommand_from list remove help" -l database-url -d 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db' -r
complete -c authctl -n "__fish_authctl_using_subcommand passkeys; and not __fish_seen_subcommand_from list remove help" -l config -d 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)' -r -F
complete -c authctl -n "__fish_authctl_using_subcommand passkeys; and not __fish_seen_subcommand_from list remove help" -s o -l output -d 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)' -r -f -a "table\t'A table for people: one line per row, columns apart by spaces'
wide\t'The table with its extra columns (user agents, expiry, ...)'
json\t'JSON for scripts: the shapes in docs/cli-json.md (camelCase, every key always present)'"
complete -c authctl -n "__fish_authctl_using_subcommand passkeys; and not __fish_seen_subcommand_from list remove help" -l no-headers -d 'Print tables without their header line'
complete -c authctl -n "__fish_authctl_using_subcommand passkeys; and not __fish_seen_subcommand_from list remove help" -s y -l yes -d 'Do not ask before destructive actions (required when stdin is not a terminal)'
complete -c authctl -n "__fish_authctl_using_subcommand passkeys; and not __fish_seen_subcommand_from list remove help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c authctl -n "__fish_authctl_using_subcommand passkeys; and not __fish_seen_subcommand_from list remove help" -s V -l version -d 'Print version'
complete -c authctl -n "__fish_authctl_using_subcommand passkeys; and not __fish_seen_subcommand_from list remove help" -f -a "list" -d 'List an account\'s passkeys, newest first (never the public keys)'
complete -c authctl -n "__fish_authctl_using_subcommand passkeys; and not __fish_seen_subcommand_from list remove help" -f -a "remove" -d 'Remove a passkey by id: it fails at its very next use, and its owner is mailed'
complete -c authctl -n "__fish_authctl_using_subcommand passkeys; and not __fish_seen_subcommand_from list remove help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c authctl -n "__fish_authctl_using_subcommand passkeys; and __fish_seen_subcommand_from list" -l user -d 'The account, by address or id' -r
complete -c authctl -n "__fish_authctl_using_subcommand passkeys; and __fish_seen_subcommand_from list" -l limit -d 'At most N rows (default: 100 when stdout is a terminal, every row otherwise)' -r
complete -c authctl -n "__fish_authctl_using_subcommand passkeys; and __fish_seen_subcommand_from list" -l after -d 'Start after the row with this id: the last id of the previous page' -r
complete -c authctl -n "__fish_authctl_using_subcommand passkeys; and __fish_seen_subcommand_from list" -l database-url -d 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db' -r
complete -c authctl -n "__fish_authctl_using_subcommand passkeys; and __fish_seen_subcommand_from list" -l config -d 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)' -r -F
complete -c authctl -n "__fish_authctl_using_subcommand passkeys; and __fish_seen_subcommand_from list" -s o -l output -d 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)' -r -f -a "table\t'A table for people: one line per row, columns apart by spaces'
wide\t'The table with its extra columns (user agents, expiry, ...)'
json\t'JSON for scripts: the shapes in docs/cli-json.md (camelCase, every key always present)'"
complete -c authctl -n "__fish_authctl_using_subcommand passkeys; and __fish_seen_subcommand_from list" -l no-headers -d 'Print tables without their header line'
complete -c authctl -n "__fish_authctl_using_subcommand passkeys; and __fish_seen_subcommand_from list" -s y -l yes -d 'Do not ask before destructive actions (required when stdin is not a terminal)'
complete -c authctl -n "__fish_authctl_using_subcommand passkeys; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c authctl -n "__fish_authctl_using_subcommand passkeys; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c authctl -n "__fish_authctl_using_subcommand passkeys; and __fish_seen_subcommand_from remove" -l database-url -d 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db' -r
complete -c authctl -n "__fish_authctl_using_subcommand passkeys; and __fish_seen_subcommand_from remove" -l config -d 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)' -r -F
complete -c authctl -n "__fish_authctl_using_subcommand passkeys; and __fish_seen_subcommand_from remove" -s o -l output -d 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)' -r -f -a "table\t'A table for people: one line per row, columns apart by spaces'
wide\t'The table with its extra columns (user agents, expiry, ...)'
json\t'JSON for scripts: the shapes in docs/cli-json.md (camelCase, every key always present)'"
complete -c authctl -n "__fish_authctl_using_subcommand passkeys; and __fish_seen_subcommand_from remove" -l no-headers -d 'Print tables without their header line'
complete -c authctl -n "__fish_authctl_using_subcommand passkeys; and __fish_seen_subcommand_from remove" -s y -l yes -d 'Do not ask before destructive actions (required when stdin is not a terminal)'
complete -c authctl -n "__fish_authctl_using_subcommand passkeys; and __fish_seen_subcommand_from remove" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c authctl -n "__fish_authctl_using_subcommand passkeys; and __fish_seen_subcommand_from remove" -s V -l version -d 'Print version'
complete -c authctl -n "__fish_authctl_using_subcommand passkeys; and __fish_seen_subcommand_from help" -f -a "list" -d 'List an account\'s passkeys, newest first (never the public keys)'
complete -c authctl -n "__fish_authctl_using_subcommand passkeys; and __fish_seen_subcommand_from help" -f -a "remove" -d 'Remove a passkey by id: it fails at its very next use, and its owner is mailed'
complete -c authctl -n "__fish_authctl_using_subcommand passkeys; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c authctl -n "__fish_authctl_using_subcommand scim; and not __fish_seen_subcommand_from tokens help" -l database-url -d 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db' -r
complete -c authctl -n "__fish_authctl_using_subcommand scim; and not __fish_seen_subcommand_from tokens help" -l config -d 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)' -r -F
complete -c authctl -n "__fish_authctl_using_subcommand scim; and not __fish_seen_subcommand_from tokens help" -s o -l output -d 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)' -r -f -a "table\t'A table for people: one line per row, columns apart by spaces'
wide\t'The table with its extra columns (user agents, expiry, ...)'
json\t'JSON for scripts: the shapes in docs/cli-json.md (camelCase, every key always present)'"
complete -c authctl -n "__fish_authctl_using_subcommand scim; and not __fish_seen_subcommand_from tokens help" -l no-headers -d 'Print tables without their header line'
complete -c authctl -n "__fish_authctl_using_subcommand scim; and not __fish_seen_subcommand_from tokens help" -s y -l yes -d 'Do not ask before destructive actions (required when stdin is not a terminal)'
complete -c authctl -n "__fish_authctl_using_subcommand scim; and not __fish_seen_subcommand_from tokens help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c authctl -n "__fish_authctl_using_subcommand scim; and not __fish_seen_subcommand_from tokens help" -s V -l version -d 'Print version'
complete -c authctl -n "__fish_authctl_using_subcommand scim; and not __fish_seen_subcommand_from tokens help" -f -a "tokens" -d 'Make, list and revoke the bearer tokens a provider\'s IdP provisions users with'
complete -c authctl -n "__fish_authctl_using_subcommand scim; and not __fish_seen_subcommand_from tokens help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c authctl -n "__fish_authctl_using_subcommand scim; and __fish_seen_subcommand_from tokens" -l database-url -d 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db' -r
complete -c authctl -n "__fish_authctl_using_subcommand scim; and __fish_seen_subcommand_from tokens" -l config -d 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)' -r -F
complete -c authctl -n "__fish_authctl_using_subcommand scim; and __fish_seen_subcommand_from tokens" -s o -l output -d 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)' -r -f -a "table\t'A table for people: one line per row, columns apart by spaces'
wide\t'The table with its extra columns (user agents, expiry, ...)'
json\t'JSON for scripts: the shapes in docs/cli-json.md (camelCase, every key always present)'"
complete -c authctl -n "__fish_authctl_using_subcommand scim; and __fish_seen_subcommand_from tokens" -l no-headers -d 'Print tables without their header line'
complete -c authctl -n "__fish_authctl_using_subcommand scim; and __fish_seen_subcommand_from tokens" -s y -l yes -d 'Do not ask before destructive actions (required when stdin is not a terminal)'
complete -c authctl -n "__fish_authctl_using_subcommand scim; and __fish_seen_subcommand_from tokens" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c authctl -n "__fish_authctl_using_subcommand scim; and __fish_seen_subcommand_from tokens" -s V -l version -d 'Print version'
complete -c authctl -n "__fish_authctl_using_subcommand scim; and __fish_seen_subcommand_from tokens" -f -a "create" -d 'Make a token for a provider\'s SCIM client. The token is written to a new file (mode 600), never to stdout: paste it into the IdP, then delete the file'
complete -c authctl -n "__fish_authctl_using_subcommand scim; and __fish_seen_subcommand_from tokens" -f -a "list" -d 'List SCIM tokens (never the secrets), newest first'
complete -c authctl -n "__fish_authctl_using_subcommand scim; and __fish_seen_subcommand_from tokens" -f -a "revoke" -d 'Revoke a SCIM token by id; its next request gets 401'
complete -c authctl -n "__fish_authctl_using_subcommand scim; and __fish_seen_subcommand_from tokens" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c authctl -n "__fish_authctl_using_subcommand scim; and __fish_seen_subcommand_from help" -f -a "tokens" -d 'Make, list and revoke the bearer tokens a provider\'s IdP provisions users with'
complete -c authctl -n "__fish_authctl_using_subcommand scim; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c authctl -n "__fish_authctl_using_subcommand mail; and not __fish_seen_subcommand_from deliver status help" -l database-url -d 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db' -r
complete -c authctl -n "__fish_authctl_using_subcommand mail; and not __fish_seen_subcommand_from deliver status help" -l config -d 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)' -r -F
complete -c authctl -n "__fish_authctl_using_subcommand mail; and not __fish_seen_subcommand_from deliver status help" -s o -l output -d 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)' -r -f -a "table\t'A table for people: one line per row, columns apart by spaces'
wide\t'The table with its extra columns (user agents, expiry, ...)'
json\t'JSON for scripts: the shapes in docs/cli-json.md (camelCase, every key always present)'"
complete -c authctl -n "__fish_authctl_using_subcommand mail; and not __fish_seen_subcommand_from deliver status help" -l no-headers -d 'Print tables without their header line'
complete -c authctl -n "__fish_authctl_using_subcommand mail; and not __fish_seen_subcommand_from deliver status help" -s y -l yes -d 'Do not ask before destructive actions (required when stdin is not a terminal)'
complete -c authctl -n "__fish_authctl_using_subcommand mail; and not __fish_seen_subcommand_from deliver status help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c authctl -n "__fish_authctl_using_subcommand mail; and not __fish_seen_subcommand_from deliver status help" -s V -l version -d 'Print version'
complete -c authctl -n "__fish_authctl_using_subcommand mail; and not __fish_seen_subcommand_from deliver status help" -f -a "deliver" -d 'Deliver every queued mail that is due now, over the configured transport'
complete -c authctl -n "__fish_authctl_using_subcommand mail; and not __fish_seen_subcommand_from deliver status help" -f -a "status" -d 'How many mails wait in the outbox, and how many were given up'
complete -c authctl -n "__fish_authctl_using_subcommand mail; and not __fish_seen_subcommand_from deliver status help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c authctl -n "__fish_authctl_using_subcommand mail; and __fish_seen_subcommand_from deliver" -l database-url -d 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db' -r
complete -c authctl -n "__fish_authctl_using_subcommand mail; and __fish_seen_subcommand_from deliver" -l config -d 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)' -r -F
complete -c authctl -n "__fish_authctl_using_subcommand mail; and __fish_seen_subcommand_from deliver" -s o -l output -d 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)' -r -f -a "table\t'A table for people: one line per row, columns apart by spaces'
wide\t'The table with its extra columns (user agents, expiry, ...)'
json\t'JSON for scripts: the shapes in docs/cli-json.md (camelCase, every key always present)'"
complete -c authctl -n "__fish_authctl_using_subcommand mail; and __fish_seen_subcommand_from deliver" -l no-headers -d 'Print tables without their header line'
complete -c authctl -n "__fish_authctl_using_subcommand mail; and __fish_seen_subcommand_from deliver" -s y -l yes -d 'Do not ask before destructive actions (required when stdin is not a terminal)'
complete -c authctl -n "__fish_authctl_using_subcommand mail; and __fish_seen_subcommand_from deliver" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c authctl -n "__fish_authctl_using_subcommand mail; and __fish_seen_subcommand_from deliver" -s V -l version -d 'Print version'
complete -c authctl -n "__fish_authctl_using_subcommand mail; and __fish_seen_subcommand_from status" -l database-url -d 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db' -r
complete -c authctl -n "__fish_authctl_using_subcommand mail; and __fish_seen_subcommand_from status" -l config -d 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)' -r -F
complete -c authctl -n "__fish_authctl_using_subcommand mail; and __fish_seen_subcommand_from status" -s o -l output -d 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)' -r -f -a "table\t'A table for people: one line per row, columns apart by spaces'
wide\t'The table with its extra columns (user agents, expiry, ...)'
json\t'JSON for scripts: the shapes in docs/cli-json.md (camelCase, every key always present)'"
complete -c authctl -n "__fish_authctl_using_subcommand mail; and __fish_seen_subcommand_from status" -l no-headers -d 'Print tables without their header line'
complete -c authctl -n "__fish_authctl_using_subcommand mail; and __fish_seen_subcommand_from status" -s y -l yes -d 'Do not ask before destructive actions (required when stdin is not a terminal)'
complete -c authctl -n "__fish_authctl_using_subcommand mail; and __fish_seen_subcommand_from status" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c authctl -n "__fish_authctl_using_subcommand mail; and __fish_seen_subcommand_from status" -s V -l version -d 'Print version'
complete -c authctl -n "__fish_authctl_using_subcommand mail; and __fish_seen_subcommand_from help" -f -a "deliver" -d 'Deliver every queued mail that is due now, over the configured transport'
complete -c authctl -n "__fish_authctl_using_subcommand mail; and __fish_seen_subcommand_from help" -f -a "status" -d 'How many mails wait in the outbox, and how many were given up'
complete -c authctl -n "__fish_authctl_using_subcommand mail; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c authctl -n "__fish_authctl_using_subcommand deletion; and not __fish_seen_subcommand_from list schedule cancel sweep events help" -l database-url -d 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db' -r
complete -c authctl -n "__fish_authctl_using_subcommand deletion; and not __fish_seen_subcommand_from list schedule cancel sweep events help" -l config -d 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)' -r -F
complete -c authctl -n "__fish_authctl_using_subcommand deletion; and not __fish_seen_subcommand_from list schedule cancel sweep events help" -s o -l output -d 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)' -r -f -a "table\t'A table for people: one line per row, columns apart by spaces'
wide\t'The table with its extra columns (user agents, expiry, ...)'
json\t'JSON for scripts: the shapes in docs/cli-json.md (camelCase, every key always present)'"
complete -c authctl -n "__fish_authctl_using_subcommand deletion; and not __fish_seen_subcommand_from list schedule cancel sweep events help" -l no-headers -d 'Print tables without their header line'
complete -c authctl -n "__fish_authctl_using_subcommand deletion; and not __fish_seen_subcommand_from list schedule cancel sweep events help" -s y -l yes -d 'Do not ask before destructive actions (required when stdin is not a terminal)'
complete -c authctl -n "__fish_authctl_using_subcommand deletion; and not __fish_seen_subcommand_from list schedule cancel sweep events help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c authctl -n "__fish_authctl_using_subcommand deletion; and not __fish_seen_subcommand_from list schedule cancel sweep events help" -s V -l version -d 'Print version'
complete -c authctl -n "__fish_authctl_using_subcommand deletion; and not __fish_seen_subcommand_from list schedule cancel sweep events help" -f -a "list" -d 'Accounts waiting for deletion, soonest first, with their dates'
complete -c authctl -n "__fish_authctl_using_subcommand deletion; and not __fish_seen_subcommand_from list schedule cancel sweep events help" -f -a "schedule" -d 'Schedule an account for deletion (its sessions and API keys end at once). Asks first'
complete -c authctl -n "__fish_authctl_using_subcommand deletion; and not __fish_seen_subcommand_from list schedule cancel sweep events help" -f -a "cancel" -d 'Cancel a scheduled deletion'
complete -c authctl -n "__fish_authctl_using_subcommand deletion; and not __fish_seen_subcommand_from list schedule cancel sweep events help" -f -a "sweep" -d 'Hard-delete every account whose grace period has passed. Safe to run from cron and on several machines at once'
complete -c authctl -n "__fish_authctl_using_subcommand deletion; and not __fish_seen_subcommand_from list schedule cancel sweep events help" -f -a "events" -d 'The outbox of `user.deleted` events for downstream systems, newest first, with their webhook delivery'
complete -c authctl -n "__fish_authctl_using_subcommand deletion; and not __fish_seen_subcommand_from list schedule cancel sweep events help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c authctl -n "__fish_authctl_using_subcommand deletion; and __fish_seen_subcommand_from list" -l database-url -d 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db' -r
complete -c authctl -n "__fish_authctl_using_subcommand deletion; and __fish_seen_subcommand_from list" -l config -d 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)' -r -F
complete -c authctl -n "__fish_authctl_using_subcommand deletion; and __fish_seen_subcommand_from list" -s o -l output -d 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)' -r -f -a "table\t'A table for people: one line per row, columns apart by spaces'
wide\t'The table with its extra columns (user agents, expiry, ...)'
json\t'JSON for scripts: the shapes in docs/cli-json.md (camelCase, every key always present)'"
complete -c authctl -n "__fish_authctl_using_subcommand deletion; and __fish_seen_subcommand_from list" -l no-headers -d 'Print tables without their header line'
complete -c authctl -n "__fish_authctl_using_subcommand deletion; and __fish_seen_subcommand_from list" -s y -l yes -d 'Do not ask before destructive actions (required when stdin is not a terminal)'
complete -c authctl -n "__fish_authctl_using_subcommand deletion; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c authctl -n "__fish_authctl_using_subcommand deletion; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c authctl -n "__fish_authctl_using_subcommand deletion; and __fish_seen_subcommand_from schedule" -l grace -d 'The grace period before the hard delete (default: deletion.grace_period)' -r
complete -c authctl -n "__fish_authctl_using_subcommand deletion; and __fish_seen_subcommand_from schedule" -l database-url -d 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db' -r
complete -c authctl -n "__fish_authctl_using_subcommand deletion; and __fish_seen_subcommand_from schedule" -l config -d 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)' -r -F
complete -c authctl -n "__fish_authctl_using_subcommand deletion; and __fish_seen_subcommand_from schedule" -s o -l output -d 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)' -r -f -a "table\t'A table for people: one line per row, columns apart by spaces'
wide\t'The table with its extra columns (user agents, expiry, ...)'
json\t'JSON for scripts: the shapes in docs/cli-json.md (camelCase, every key always present)'"
complete -c authctl -n "__fish_authctl_using_subcommand deletion; and __fish_seen_subcommand_from schedule" -l no-headers -d 'Print tables without their header line'
complete -c authctl -n "__fish_authctl_using_subcommand deletion; and __fish_seen_subcommand_from schedule" -s y -l yes -d 'Do not ask before destructive actions (required when stdin is not a terminal)'
complete -c authctl -n "__fish_authctl_using_subcommand deletion; and __fish_seen_subcommand_from schedule" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c authctl -n "__fish_authctl_using_subcommand deletion; and __fish_seen_subcommand_from schedule" -s V -l version -d 'Print version'
complete -c authctl -n "__fish_authctl_using_subcommand deletion; and __fish_seen_subcommand_from cancel" -l database-url -d 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db' -r
complete -c authctl -n "__fish_authctl_using_subcommand deletion; and __fish_seen_subcommand_from cancel" -l config -d 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)' -r -F
complete -c authctl -n "__fish_authctl_using_subcommand deletion; and __fish_seen_subcommand_from cancel" -s o -l output -d 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)' -r -f -a "table\t'A table for people: one line per row, columns apart by spaces'
wide\t'The table with its extra columns (user agents, expiry, ...)'
json\t'JSON for scripts: the shapes in docs/cli-json.md (camelCase, every key always present)'"
complete -c authctl -n "__fish_authctl_using_subcommand deletion; and __fish_seen_subcommand_from cancel" -l no-headers -d 'Print tables without their header line'
complete -c authctl -n "__fish_authctl_using_subcommand deletion; and __fish_seen_subcommand_from cancel" -s y -l yes -d 'Do not ask before destructive actions (required when stdin is not a terminal)'
complete -c authctl -n "__fish_authctl_using_subcommand deletion; and __fish_seen_subcommand_from cancel" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c authctl -n "__fish_authctl_using_subcommand deletion; and __fish_seen_subcommand_from cancel" -s V -l version -d 'Print version'
complete -c authctl -n "__fish_authctl_using_subcommand deletion; and __fish_seen_subcommand_from sweep" -l batch-size -d 'Accounts per batch, one transaction each, 1 to 1000 (default: deletion.batch_size)' -r
complete -c authctl -n "__fish_authctl_using_subcommand deletion; and __fish_seen_subcommand_from sweep" -l database-url -d 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db' -r
complete -c authctl -n "__fish_authctl_using_subcommand deletion; and __fish_seen_subcommand_from sweep" -l config -d 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)' -r -F
complete -c authctl -n "__fish_authctl_using_subcommand deletion; and __fish_seen_subcommand_from sweep" -s o -l output -d 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)' -r -f -a "table\t'A table for people: one line per row, columns apart by spaces'
wide\t'The table with its extra columns (user agents, expiry, ...)'
json\t'JSON for scripts: the shapes in docs/cli-json.md (camelCase, every key always present)'"
complete -c authctl -n "__fish_authctl_using_subcommand deletion; and __fish_seen_subcommand_from sweep" -l dry-run -d 'Only print, per table, what would be deleted or anonymized'
complete -c authctl -n "__fish_authctl_using_subcommand deletion; and __fish_seen_subcommand_from sweep" -l no-headers -d 'Print tables without their header line'
complete -c authctl -n "__fish_authctl_using_subcommand deletion; and __fish_seen_subcommand_from sweep" -s y -l yes -d 'Do not ask before destructive actions (required when stdin is not a terminal)'
complete -c authctl -n "__fish_authctl_using_subcommand deletion; and __fish_seen_subcommand_from sweep" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c authctl -n "__fish_authctl_using_subcommand deletion; and __fish_seen_subcommand_from sweep" -s V -l version -d 'Print version'
complete -c authctl -n "__fish_authctl_using_subcommand deletion; and __fish_seen_subcommand_from events" -l limit -d 'At most N rows (default: 100 when stdout is a terminal, every row otherwise)' -r
complete -c authctl -n "__fish_authctl_using_subcommand deletion; and __fish_seen_subcommand_from events" -l after -d 'Start after the row with this id: the last id of the previous page' -r
complete -c authctl -n "__fish_authctl_using_subcommand deletion; and __fish_seen_subcommand_from events" -l database-url -d 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db' -r
complete -c authctl -n "__fish_authctl_using_subcommand deletion; and __fish_seen_subcommand_from events" -l config -d 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)' -r -F
complete -c authctl -n "__fish_authctl_using_subcommand deletion; and __fish_seen_subcommand_from events" -s o -l output -d 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)' -r -f -a "table\t'A table for people: one line per row, columns apart by spaces'
wide\t'The table with its extra columns (user agents, expiry, ...)'
json\t'JSON for scripts: the shapes in docs/cli-json.md (camelCase, every key always present)'"
complete -c authctl -n "__fish_authctl_using_subcommand deletion; and __fish_seen_subcommand_from events" -l no-headers -d 'Print tables without their header line'
complete -c authctl -n "__fish_authctl_using_subcommand deletion; and __fish_seen_subcommand_from events" -s y -l yes -d 'Do not ask before destructive actions (required when stdin is not a terminal)'
complete -c authctl -n "__fish_authctl_using_subcommand deletion; and __fish_seen_subcommand_from events" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c authctl -n "__fish_authctl_using_subcommand deletion; and __fish_seen_subcommand_from events" -s V -l version -d 'Print version'
complete -c authctl -n "__fish_authctl_using_subcommand deletion; and __fish_seen_subcommand_from help" -f -a "list" -d 'Accounts waiting for deletion, soonest first, with their dates'
complete -c authctl -n "__fish_authctl_using_subcommand deletion; and __fish_seen_subcommand_from help" -f -a "schedule" -d 'Schedule an account for deletion (its sessions and API keys end at once). Asks first'
complete -c authctl -n "__fish_authctl_using_subcommand deletion; and __fish_seen_subcommand_from help" -f -a "cancel" -d 'Cancel a scheduled deletion'
complete -c authctl -n "__fish_authctl_using_subcommand deletion; and __fish_seen_subcommand_from help" -f -a "sweep" -d 'Hard-delete every account whose grace period has passed. Safe to run from cron and on several machines at once'
complete -c authctl -n "__fish_authctl_using_subcommand deletion; and __fish_seen_subcommand_from help" -f -a "events" -d 'The outbox of `user.deleted` events for downstream systems, newest first, with their webhook delivery'
complete -c authctl -n "__fish_authctl_using_subcommand deletion; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c authctl -n "__fish_authctl_using_subcommand audit; and not __fish_seen_subcommand_from list help" -l database-url -d 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db' -r
complete -c authctl -n "__fish_authctl_using_subcommand audit; and not __fish_seen_subcommand_from list help" -l config -d 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)' -r -F
complete -c authctl -n "__fish_authctl_using_subcommand audit; and not __fish_seen_subcommand_from list help" -s o -l output -d 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)' -r -f -a "table\t'A table for people: one line per row, columns apart by spaces'
wide\t'The table with its extra columns (user agents, expiry, ...)'
json\t'JSON for scripts: the shapes in docs/cli-json.md (camelCase, every key always present)'"
complete -c authctl -n "__fish_authctl_using_subcommand audit; and not __fish_seen_subcommand_from list help" -l no-headers -d 'Print tables without their header line'
complete -c authctl -n "__fish_authctl_using_subcommand audit; and not __fish_seen_subcommand_from list help" -s y -l yes -d 'Do not ask before destructive actions (required when stdin is not a terminal)'
complete -c authctl -n "__fish_authctl_using_subcommand audit; and not __fish_seen_subcommand_from list help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c authctl -n "__fish_authctl_using_subcommand audit; and not __fish_seen_subcommand_from list help" -s V -l version -d 'Print version'
complete -c authctl -n "__fish_authctl_using_subcommand audit; and not __fish_seen_subcommand_from list help" -f -a "list" -d 'List audit events, newest first, with the account\'s address while it exists'
complete -c authctl -n "__fish_authctl_using_subcommand audit; and not __fish_seen_subcommand_from list help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c authctl -n "__fish_authctl_using_subcommand audit; and __fish_seen_subcommand_from list" -l user -d 'Only events about this account, by address or id' -r
complete -c authctl -n "__fish_authctl_using_subcommand audit; and __fish_seen_subcommand_from list" -l since -d 'Only events since this long ago (`2h`, `7d`) or since an RFC 3339 time' -r
complete -c authctl -n "__fish_authctl_using_subcommand audit; and __fish_seen_subcommand_from list" -l limit -d 'At most N rows (default: 100 when stdout is a terminal, every row otherwise)' -r
complete -c authctl -n "__fish_authctl_using_subcommand audit; and __fish_seen_subcommand_from list" -l after -d 'Start after the row with this id: the last id of the previous page' -r
complete -c authctl -n "__fish_authctl_using_subcommand audit; and __fish_seen_subcommand_from list" -l database-url -d 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db' -r
complete -c authctl -n "__fish_authctl_using_subcommand audit; and __fish_seen_subcommand_from list" -l config -d 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)' -r -F
complete -c authctl -n "__fish_authctl_using_subcommand audit; and __fish_seen_subcommand_from list" -s o -l output -d 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)' -r -f -a "table\t'A table for people: one line per row, columns apart by spaces'
wide\t'The table with its extra columns (user agents, expiry, ...)'
json\t'JSON for scripts: the shapes in docs/cli-json.md (camelCase, every key always present)'"
complete -c authctl -n "__fish_authctl_using_subcommand audit; and __fish_seen_subcommand_from list" -l no-headers -d 'Print tables without their header line'
complete -c authctl -n "__fish_authctl_using_subcommand audit; and __fish_seen_subcommand_from list" -s y -l yes -d 'Do not ask before destructive actions (required when stdin is not a terminal)'
complete -c authctl -n "__fish_authctl_using_subcommand audit; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c authctl -n "__fish_authctl_using_subcommand audit; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c authctl -n "__fish_authctl_using_subcommand audit; and __fish_seen_subcommand_from help" -f -a "list" -d 'List audit events, newest first, with the account\'s address while it exists'
complete -c authctl -n "__fish_authctl_using_subcommand audit; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c authctl -n "__fish_authctl_using_subcommand saml; and not __fish_seen_subcommand_from add list show update remove metadata help" -l database-url -d 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db' -r
complete -c authctl -n "__fish_authctl_using_subcommand saml; and not __fish_seen_subcommand_from add list show update remove metadata help" -l config -d 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)' -r -F
complete -c authctl -n "__fish_authctl_using_subcommand saml; and not __fish_seen_subcommand_from add list show update remove metadata help" -s o -l output -d 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)' -r -f -a "table\t'A table for people: one line per row, columns apart by spaces'
wide\t'The table with its extra columns (user agents, expiry, ...)'
json\t'JSON for scripts: the shapes in docs/cli-json.md (camelCase, every key always present)'"
complete -c authctl -n "__fish_authctl_using_subcommand saml; and not __fish_seen_subcommand_from add list show update remove metadata help" -l no-headers -d 'Print tables without their header line'
complete -c authctl -n "__fish_authctl_using_subcommand saml; and not __fish_seen_subcommand_from add list show update remove metadata help" -s y -l yes -d 'Do not ask before destructive actions (required when stdin is not a terminal)'
complete -c authctl -n "__fish_authctl_using_subcommand saml; and not __fish_seen_subcommand_from add list show update remove metadata help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c authctl -n "__fish_authctl_using_subcommand saml; and not __fish_seen_subcommand_from add list show update remove metadata help" -s V -l version -d 'Print version'
complete -c authctl -n "__fish_authctl_using_subcommand saml; and not __fish_seen_subcommand_from add list show update remove metadata help" -f -a "add" -d 'Register an identity provider from its metadata for one or more e-mail domains'
complete -c authctl -n "__fish_authctl_using_subcommand saml; and not __fish_seen_subcommand_from add list show update remove metadata help" -f -a "list" -d 'List providers: entity ID, domains, certificate expiry, last login'
complete -c authctl -n "__fish_authctl_using_subcommand saml; and not __fish_seen_subcommand_from add list show update remove metadata help" -f -a "show" -d 'Show one provider, with what the IdP admin needs (our entity ID and ACS URL)'
complete -c authctl -n "__fish_authctl_using_subcommand saml; and not __fish_seen_subcommand_from add list show update remove metadata help" -f -a "update" -d 'Change a provider: new metadata (certificate rollover), domains, attributes, mapping'
complete -c authctl -n "__fish_authctl_using_subcommand saml; and not __fish_seen_subcommand_from add list show update remove metadata help" -f -a "remove" -d 'Remove a provider and its domains (users and their roles stay). Asks first'
complete -c authctl -n "__fish_authctl_using_subcommand saml; and not __fish_seen_subcommand_from add list show update remove metadata help" -f -a "metadata" -d 'Print our SP metadata for a provider, for the IdP administrator'
complete -c authctl -n "__fish_authctl_using_subcommand saml; and not __fish_seen_subcommand_from add list show update remove metadata help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c authctl -n "__fish_authctl_using_subcommand saml; and __fish_seen_subcommand_from add" -l metadata-file -d 'The IdP\'s metadata XML file' -r -F
complete -c authctl -n "__fish_authctl_using_subcommand saml; and __fish_seen_subcommand_from add" -l metadata-url -d 'The IdP\'s metadata URL (fetched once, now)' -r
complete -c authctl -n "__fish_authctl_using_subcommand saml; and __fish_seen_subcommand_from add" -l domain -d 'An e-mail domain this provider serves (repeat for several)' -r
complete -c authctl -n "__fish_authctl_using_subcommand saml; and __fish_seen_subcommand_from add" -l email-attribute -d 'The attribute holding the e-mail address (default: email, mail, the OID or the claims URI; else the NameID)' -r
complete -c authctl -n "__fish_authctl_using_subcommand saml; and __fish_seen_subcommand_from add" -l name-attribute -d 'The attribute holding the display name (default: name, displayName, cn, ...)' -r
complete -c authctl -n "__fish_authctl_using_subcommand saml; and __fish_seen_subcommand_from add" -l groups-attribute -d 'The multi-valued attribute holding group names (default: groups, memberOf, ...)' -r
complete -c authctl -n "__fish_authctl_using_subcommand saml; and __fish_seen_subcommand_from add" -l map-group -d 'Give members of GROUP the role ROLE (repeat for several)' -r
complete -c authctl -n "__fish_authctl_using_subcommand saml; and __fish_seen_subcommand_from add" -l default-role -d 'A role every user of this provider gets' -r
complete -c authctl -n "__fish_authctl_using_subcommand saml; and __fish_seen_subcommand_from add" -l link-policy -d 'Whether an existing account with the same, verified address may be linked' -r -f -a "none\t''
verified-email\t''"
complete -c authctl -n "__fish_authctl_using_subcommand saml; and __fish_seen_subcommand_from add" -l trust-idp-mfa -d 'Trust this IdP\'s multi-factor sign-in when the assertion\'s AuthnContextClassRef is CLASSREF (repeat for several): accounts with an authenticator app then skip its code. Without it they are asked for their code after SSO' -r
complete -c authctl -n "__fish_authctl_using_subcommand saml; and __fish_seen_subcommand_from add" -l database-url -d 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db' -r
complete -c authctl -n "__fish_authctl_using_subcommand saml; and __fish_seen_subcommand_from add" -l config -d 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)' -r -F
complete -c authctl -n "__fish_authctl_using_subcommand saml; and __fish_seen_subcommand_from add" -s o -l output -d 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)' -r -f -a "table\t'A table for people: one line per row, columns apart by spaces'
wide\t'The table with its extra columns (user agents, expiry, ...)'
json\t'JSON for scripts: the shapes in docs/cli-json.md (camelCase, every key always present)'"
complete -c authctl -n "__fish_authctl_using_subcommand saml; and __fish_seen_subcommand_from add" -l no-headers -d 'Print tables without their header line'
complete -c authctl -n "__fish_authctl_using_subcommand saml; and __fish_seen_subcommand_from add" -s y -l yes -d 'Do not ask before destructive actions (required when stdin is not a terminal)'
complete -c authctl -n "__fish_authctl_using_subcommand saml; and __fish_seen_subcommand_from add" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c authctl -n "__fish_authctl_using_subcommand saml; and __fish_seen_subcommand_from add" -s V -l version -d 'Print version'
complete -c authctl -n "__fish_authctl_using_subcommand saml; and __fish_seen_subcommand_from list" -l database-url -d 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db' -r
complete -c authctl -n "__fish_authctl_using_subcommand saml; and __fish_seen_subcommand_from list" -l config -d 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)' -r -F
complete -c authctl -n "__fish_authctl_using_subcommand saml; and __fish_seen_subcommand_from list" -s o -l output -d 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)' -r -f -a "table\t'A table for people: one line per row, columns apart by spaces'
wide\t'The table with its extra columns (user agents, expiry, ...)'
json\t'JSON for scripts: the shapes in docs/cli-json.md (camelCase, every key always present)'"
complete -c authctl -n "__fish_authctl_using_subcommand saml; and __fish_seen_subcommand_from list" -l no-headers -d 'Print tables without their header line'
complete -c authctl -n "__fish_authctl_using_subcommand saml; and __fish_seen_subcommand_from list" -s y -l yes -d 'Do not ask before destructive actions (required when stdin is not a terminal)'
complete -c authctl -n "__fish_authctl_using_subcommand saml; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c authctl -n "__fish_authctl_using_subcommand saml; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c authctl -n "__fish_authctl_using_subcommand saml; and __fish_seen_subcommand_from show" -l database-url -d 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db' -r
complete -c authctl -n "__fish_authctl_using_subcommand saml; and __fish_seen_subcommand_from show" -l config -d 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)' -r -F
complete -c authctl -n "__fish_authctl_using_subcommand saml; and __fish_seen_subcommand_from show" -s o -l output -d 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)' -r -f -a "table\t'A table for people: one line per row, columns apart by spaces'
wide\t'The table with its extra columns (user agents, expiry, ...)'
json\t'JSON for scripts: the shapes in docs/cli-json.md (camelCase, every key always present)'"
complete -c authctl -n "__fish_authctl_using_subcommand saml; and __fish_seen_subcommand_from show" -l no-headers -d 'Print tables without their header line'
complete -c authctl -n "__fish_authctl_using_subcommand saml; and __fish_seen_subcommand_from show" -s y -l yes -d 'Do not ask before destructive actions (required when stdin is not a terminal)'
complete -c authctl -n "__fish_authctl_using_subcommand saml; and __fish_seen_subcommand_from show" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c authctl -n "__fish_authctl_using_subcommand saml; and __fish_seen_subcommand_from show" -s V -l version -d 'Print version'
complete -c authctl -n "__fish_authctl_using_subcommand saml; and __fish_seen_subcommand_from update" -l metadata-file -d 'The IdP\'s metadata XML file' -r -F
complete -c authctl -n "__fish_authctl_using_subcommand saml; and __fish_seen_subcommand_from update" -l metadata-url -d 'The IdP\'s metadata URL (fetched once, now)' -r
complete -c authctl -n "__fish_authctl_using_subcommand saml; and __fish_seen_subcommand_from update" -l domain -d 'Replace the domain list (repeat for several)' -r
complete -c authctl -n "__fish_authctl_using_subcommand saml; and __fish_seen_subcommand_from update" -l email-attribute -d 'The attribute holding the e-mail address (default: email, mail, the OID or the claims URI; else the NameID)' -r
complete -c authctl -n "__fish_authctl_using_subcommand saml; and __fish_seen_subcommand_from update" -l name-attribute -d 'The attribute holding the display name (default: name, displayName, cn, ...)' -r
complete -c authctl -n "__fish_authctl_using_subcommand saml; and __fish_seen_subcommand_from update" -l groups-attribute -d 'The multi-valued attribute holding group names (default: groups, memberOf, ...)' -r
complete -c authctl -n "__fish_authctl_using_subcommand saml; and __fish_seen_subcommand_from update" -l map-group -d 'Replace the group mapping (repeat for several)' -r
complete -c authctl -n "__fish_authctl_using_subcommand saml; and __fish_seen_subcommand_from update" -l default-role -r
complete -c authctl -n "__fish_authctl_using_subcommand saml; and __fish_seen_subcommand_from update" -l link-policy -r -f -a "none\t''
verified-email\t''"
complete -c authctl -n "__fish_authctl_using_subcommand saml; and __fish_seen_subcommand_from update" -l remove-certificate -d 'Stop accepting the signing certificate with this SHA-256 fingerprint (8+ hex digits)' -r
complete -c authctl -n "__fish_authctl_using_subcommand saml; and __fish_seen_subcommand_from update" -l trust-idp-mfa -d 'Replace the AuthnContextClassRef values trusted as multi-factor (repeat for several)' -r
complete -c authctl -n "__fish_authctl_using_subcommand saml; and __fish_seen_subcommand_from update" -l database-url -d 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db' -r
complete -c authctl -n "__fish_authctl_using_subcommand saml; and __fish_seen_subcommand_from update" -l config -d 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)' -r -F
complete -c authctl -n "__fish_authctl_using_subcommand saml; and __fish_seen_subcommand_from update" -s o -l output -d 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)' -r -f -a "table\t'A table for people: one line per row, columns apart by spaces'
wide\t'The table with its extra columns (user agents, expiry, ...)'
json\t'JSON for scripts: the shapes in docs/cli-json.md (camelCase, every key always present)'"
complete -c authctl -n "__fish_authctl_using_subcommand saml; and __fish_seen_subcommand_from update" -l clear-group-map -d 'Remove every group mapping'
complete -c authctl -n "__fish_authctl_using_subcommand saml; and __fish_seen_subcommand_from update" -l no-default-role -d 'Stop giving a default role'
complete -c authctl -n "__fish_authctl_using_subcommand saml; and __fish_seen_subcommand_from update" -l no-trust-idp-mfa -d 'Trust no multi-factor claim of this IdP: authenticator-app accounts give their code'
complete -c authctl -n "__fish_authctl_using_subcommand saml; and __fish_seen_subcommand_from update" -l no-headers -d 'Print tables without their header line'
complete -c authctl -n "__fish_authctl_using_subcommand saml; and __fish_seen_subcommand_from update" -s y -l yes -d 'Do not ask before destructive actions (required when stdin is not a terminal)'
complete -c authctl -n "__fish_authctl_using_subcommand saml; and __fish_seen_subcommand_from update" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c authctl -n "__fish_authctl_using_subcommand saml; and __fish_seen_subcommand_from update" -s V -l version -d 'Print version'
complete -c authctl -n "__fish_authctl_using_subcommand saml; and __fish_seen_subcommand_from remove" -l database-url -d 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db' -r
complete -c authctl -n "__fish_authctl_using_subcommand saml; and __fish_seen_subcommand_from remove" -l config -d 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)' -r -F
complete -c authctl -n "__fish_authctl_using_subcommand saml; and __fish_seen_subcommand_from remove" -s o -l output -d 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)' -r -f -a "table\t'A table for people: one line per row, columns apart by spaces'
wide\t'The table with its extra columns (user agents, expiry, ...)'
json\t'JSON for scripts: the shapes in docs/cli-json.md (camelCase, every key always present)'"
complete -c authctl -n "__fish_authctl_using_subcommand saml; and __fish_seen_subcommand_from remove" -l no-headers -d 'Print tables without their header line'
complete -c authctl -n "__fish_authctl_using_subcommand saml; and __fish_seen_subcommand_from remove" -s y -l yes -d 'Do not ask before destructive actions (required when stdin is not a terminal)'
complete -c authctl -n "__fish_authctl_using_subcommand saml; and __fish_seen_subcommand_from remove" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c authctl -n "__fish_authctl_using_subcommand saml; and __fish_seen_subcommand_from remove" -s V -l version -d 'Print version'
complete -c authctl -n "__fish_authctl_using_subcommand saml; and __fish_seen_subcommand_from metadata" -l database-url -d 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db' -r
complete -c authctl -n "__fish_authctl_using_subcommand saml; and __fish_seen_subcommand_from metadata" -l config -d 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)' -r -F
complete -c authctl -n "__fish_authctl_using_subcommand saml; and __fish_seen_subcommand_from metadata" -s o -l output -d 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)' -r -f -a "table\t'A table for people: one line per row, columns apart by spaces'
wide\t'The table with its extra columns (user agents, expiry, ...)'
json\t'JSON for scripts: the shapes in docs/cli-json.md (camelCase, every key always present)'"
complete -c authctl -n "__fish_authctl_using_subcommand saml; and __fish_seen_subcommand_from metadata" -l no-headers -d 'Print tables without their header line'
complete -c authctl -n "__fish_authctl_using_subcommand saml; and __fish_seen_subcommand_from metadata" -s y -l yes -d 'Do not ask before destructive actions (required when stdin is not a terminal)'
complete -c authctl -n "__fish_authctl_using_subcommand saml; and __fish_seen_subcommand_from metadata" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c authctl -n "__fish_authctl_using_subcommand saml; and __fish_seen_subcommand_from metadata" -s V -l version -d 'Print version'
complete -c authctl -n "__fish_authctl_using_subcommand saml; and __fish_seen_subcommand_from help" -f -a "add" -d 'Register an identity provider from its metadata for one or more e-mail domains'
complete -c authctl -n "__fish_authctl_using_subcommand saml; and __fish_seen_subcommand_from help" -f -a "list" -d 'List providers: entity ID, domains, certificate expiry, last login'
complete -c authctl -n "__fish_authctl_using_subcommand saml; and __fish_seen_subcommand_from help" -f -a "show" -d 'Show one provider, with what the IdP admin needs (our entity ID and ACS URL)'
complete -c authctl -n "__fish_authctl_using_subcommand saml; and __fish_seen_subcommand_from help" -f -a "update" -d 'Change a provider: new metadata (certificate rollover), domains, attributes, mapping'
complete -c authctl -n "__fish_authctl_using_subcommand saml; and __fish_seen_subcommand_from help" -f -a "remove" -d 'Remove a provider and its domains (users and their roles stay). Asks first'
complete -c authctl -n "__fish_authctl_using_subcommand saml; and __fish_seen_subcommand_from help" -f -a "metadata" -d 'Print our SP metadata for a provider, for the IdP administrator'
complete -c authctl -n "__fish_authctl_using_subcommand saml; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c authctl -n "__fish_authctl_using_subcommand completions" -l dir -d 'Write the completions of every supported shell into this folder (it must exist)' -r -F
complete -c authctl -n "__fish_authctl_using_subcommand completions" -l database-url -d 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db' -r
complete -c authctl -n "__fish_authctl_using_subcommand completions" -l config -d 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)' -r -F
complete -c authctl -n "__fish_authctl_using_subcommand completions" -s o -l output -d 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)' -r -f -a "table\t'A table for people: one line per row, columns apart by spaces'
wide\t'The table with its extra columns (user agents, expiry, ...)'
json\t'JSON for scripts: the shapes in docs/cli-json.md (camelCase, every key always present)'"
complete -c authctl -n "__fish_authctl_using_subcommand completions" -l no-headers -d 'Print tables without their header line'
complete -c authctl -n "__fish_authctl_using_subcommand completions" -s y -l yes -d 'Do not ask before destructive actions (required when stdin is not a terminal)'
complete -c authctl -n "__fish_authctl_using_subcommand completions" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c authctl -n "__fish_authctl_using_subcommand completions" -s V -l version -d 'Print version'
complete -c authctl -n "__fish_authctl_using_subcommand status" -l database-url -d 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db' -r
complete -c authctl -n "__fish_authctl_using_subcommand status" -l config -d 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)' -r -F
complete -c authctl -n "__fish_authctl_using_subcommand status" -s o -l output -d 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)' -r -f -a "table\t'A table for people: one line per row, columns apart by spaces'
wide\t'The table with its extra columns (user agents, expiry, ...)'
json\t'JSON for scripts: the shapes in docs/cli-json.md (camelCase, every key always present)'"
complete -c authctl -n "__fish_authctl_using_subcommand status" -l no-headers -d 'Print tables without their header line'
complete -c authctl -n "__fish_authctl_using_subcommand status" -s y -l yes -d 'Do not ask before destructive actions (required when stdin is not a terminal)'
complete -c authctl -n "__fish_authctl_using_subcommand status" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c authctl -n "__fish_authctl_using_subcommand status" -s V -l version -d 'Print version'
complete -c authctl -n "__fish_authctl_using_subcommand help; and not __fish_seen_subcommand_from serve migrate users sessions verification apikeys passkeys scim mail deletion audit saml completions status help" -f -a "serve" -d 'Run the HTTP service (applies pending migrations first)'
complete -c authctl -n "__fish_authctl_using_subcommand help; and not __fish_seen_subcommand_from serve migrate users sessions verification apikeys passkeys scim mail deletion audit saml completions status help" -f -a "migrate" -d 'Show or apply database migrations'
complete -c authctl -n "__fish_authctl_using_subcommand help; and not __fish_seen_subcommand_from serve migrate users sessions verification apikeys passkeys scim mail deletion audit saml completions status help" -f -a "users" -d 'List, inspect, create, verify, disable and enable accounts'
complete -c authctl -n "__fish_authctl_using_subcommand help; and not __fish_seen_subcommand_from serve migrate users sessions verification apikeys passkeys scim mail deletion audit saml completions status help" -f -a "sessions" -d 'List and revoke users\' sessions; prune ended ones'
complete -c authctl -n "__fish_authctl_using_subcommand help; and not __fish_seen_subcommand_from serve migrate users sessions verification apikeys passkeys scim mail deletion audit saml completions status help" -f -a "verification" -d 'Email verification'
complete -c authctl -n "__fish_authctl_using_subcommand help; and not __fish_seen_subcommand_from serve migrate users sessions verification apikeys passkeys scim mail deletion audit saml completions status help" -f -a "apikeys" -d 'List and revoke users\' API keys'
complete -c authctl -n "__fish_authctl_using_subcommand help; and not __fish_seen_subcommand_from serve migrate users sessions verification apikeys passkeys scim mail deletion audit saml completions status help" -f -a "passkeys" -d 'List and remove users\' passkeys'
complete -c authctl -n "__fish_authctl_using_subcommand help; and not __fish_seen_subcommand_from serve migrate users sessions verification apikeys passkeys scim mail deletion audit saml completions status help" -f -a "scim" -d 'The bearer tokens of SAML providers\' SCIM clients'
complete -c authctl -n "__fish_authctl_using_subcommand help; and not __fish_seen_subcommand_from serve migrate users sessions verification apikeys passkeys scim mail deletion audit saml completions status help" -f -a "mail" -d 'The mail outbox: deliver queued mail now, or see how much waits'
complete -c authctl -n "__fish_authctl_using_subcommand help; and not __fish_seen_subcommand_from serve migrate users sessions verification apikeys passkeys scim mail deletion audit saml completions status help" -f -a "deletion" -d 'Scheduled account deletions and the hard-delete sweep'
complete -c authctl -n "__fish_authctl_using_subcommand help; and not __fish_seen_subcommand_from serve migrate users sessions verification apikeys passkeys scim mail deletion audit saml completions status help" -f -a "audit" -d 'Read the audit log'
complete -c authctl -n "__fish_authctl_using_subcommand help; and not __fish_seen_subcommand_from serve migrate users sessions verification apikeys passkeys scim mail deletion audit saml completions status help" -f -a "saml" -d 'SAML single sign-on: register identity providers for e-mail domains'
complete -c authctl -n "__fish_authctl_using_subcommand help; and not __fish_seen_subcommand_from serve migrate users sessions verification apikeys passkeys scim mail deletion audit saml completions status help" -f -a "completions" -d 'Print shell completions, or write every shell\'s file into a folder'
complete -c authctl -n "__fish_authctl_using_subcommand help; and not __fish_seen_subcommand_from serve migrate users sessions verification apikeys passkeys scim mail deletion audit saml completions status help" -f -a "status" -d 'Which configuration, database, server key and public URL commands here use, and whether the database is reachable and current (exit code 1 when not)'
complete -c authctl -n "__fish_authctl_using_subcommand help; and not __fish_seen_subcommand_from serve migrate users sessions verification apikeys passkeys scim mail deletion audit saml completions status help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c authctl -n "__fish_authctl_using_subcommand help; and __fish_seen_subcommand_from migrate" -f -a "status" -d 'Show which migrations are applied (the default)'
complete -c authctl -n "__fish_authctl_using_subcommand help; and __fish_seen_subcommand_from migrate" -f -a "up" -d 'Apply every pending migration'
complete -c authctl -n "__fish_authctl_using_subcommand help; and __fish_seen_subcommand_from users" -f -a "list" -d 'List accounts, oldest first'
complete -c authctl -n "__fish_authctl_using_subcommand help; and __fish_seen_subcommand_from users" -f -a "show" -d 'Show one account, by address or by id'
complete -c authctl -n "__fish_authctl_using_subcommand help; and __fish_seen_subcommand_from users" -f -a "create" -d 'Create an account. Prompts for a password on a terminal'
complete -c authctl -n "__fish_authctl_using_subcommand help; and __fish_seen_subcommand_from users" -f -a "verify" -d 'Mark an address as verified without a link'
complete -c authctl -n "__fish_authctl_using_subcommand help; and __fish_seen_subcommand_from users" -f -a "disable" -d 'Disable an account; its sessions end at once. Asks first (or pass --yes)'
complete -c authctl -n "__fish_authctl_using_subcommand help; and __fish_seen_subcommand_from users" -f -a "enable" -d 'Enable a disabled account'
complete -c authctl -n "__fish_authctl_using_subcommand help; and __fish_seen_subcommand_from users" -f -a "history" -d 'Show an account\'s login history, newest first'
complete -c authctl -n "__fish_authctl_using_subcommand help; and __fish_seen_subcommand_from sessions" -f -a "list" -d 'List an account\'s live sessions, newest first'
complete -c authctl -n "__fish_authctl_using_subcommand help; and __fish_seen_subcommand_from sessions" -f -a "revoke" -d 'Revoke one session by id, or every session of a user (`--user EMAIL --all`, asks first)'
complete -c authctl -n "__fish_authctl_using_subcommand help; and __fish_seen_subcommand_from sessions" -f -a "prune" -d 'Delete ended sessions, spent verification tokens and stale throttle rows now'
complete -c authctl -n "__fish_authctl_using_subcommand help; and __fish_seen_subcommand_from verification" -f -a "resend" -d 'Send a new verification link to an unverified account'
complete -c authctl -n "__fish_authctl_using_subcommand help; and __fish_seen_subcommand_from apikeys" -f -a "list" -d 'List an account\'s API keys, newest first (never the secrets)'
complete -c authctl -n "__fish_authctl_using_subcommand help; and __fish_seen_subcommand_from apikeys" -f -a "revoke" -d 'Revoke an API key by id; it fails on its very next request'
complete -c authctl -n "__fish_authctl_using_subcommand help; and __fish_seen_subcommand_from passkeys" -f -a "list" -d 'List an account\'s passkeys, newest first (never the public keys)'
complete -c authctl -n "__fish_authctl_using_subcommand help; and __fish_seen_subcommand_from passkeys" -f -a "remove" -d 'Remove a passkey by id: it fails at its very next use, and its owner is mailed'
complete -c authctl -n "__fish_authctl_using_subcommand help; and __fish_seen_subcommand_from scim" -f -a "tokens" -d 'Make, list and revoke the bearer tokens a provider\'s IdP provisions users with'
complete -c authctl -n "__fish_authctl_using_subcommand help; and __fish_seen_subcommand_from mail" -f -a "deliver" -d 'Deliver every queued mail that is due now, over the configured transport'
complete -c authctl -n "__fish_authctl_using_subcommand help; and __fish_seen_subcommand_from mail" -f -a "status" -d 'How many mails wait in the outbox, and how many were given up'
complete -c authctl -n "__fish_authctl_using_subcommand help; and __fish_seen_subcommand_from deletion" -f -a "list" -d 'Accounts waiting for deletion, soonest first, with their dates'
complete -c authctl -n "__fish_authctl_using_subcommand help; and __fish_seen_subcommand_from deletion" -f -a "schedule" -d 'Schedule an account for deletion (its sessions and API keys end at once). Asks first'
complete -c authctl -n "__fish_authctl_using_subcommand help; and __fish_seen_subcommand_from deletion" -f -a "cancel" -d 'Cancel a scheduled deletion'
complete -c authctl -n "__fish_authctl_using_subcommand help; and __fish_seen_subcommand_from deletion" -f -a "sweep" -d 'Hard-delete every account whose grace period has passed. Safe to run from cron and on several machines at once'
complete -c authctl -n "__fish_authctl_using_subcommand help; and __fish_seen_subcommand_from deletion" -f -a "events" -d 'The outbox of `user.deleted` events for downstream systems, newest first, with their webhook delivery'
complete -c authctl -n "__fish_authctl_using_subcommand help; and __fish_seen_subcommand_from audit" -f -a "list" -d 'List audit events, newest first, with the account\'s address while it exists'
complete -c authctl -n "__fish_authctl_using_subcommand help; and __fish_seen_subcommand_from saml" -f -a "add" -d 'Register an identity provider from its metadata for one or more e-mail domains'
complete -c authctl -n "__fish_authctl_using_subcommand help; and __fish_seen_subcommand_from saml" -f -a "list" -d 'List providers: entity ID, domains, certificate expiry, last login'
complete -c authctl -n "__fish_authctl_using_subcommand help; and __fish_seen_subcommand_from saml" -f -a "show" -d 'Show one provider, with what the IdP admin needs (our entity ID and ACS URL)'
complete -c authctl -n "__fish_authctl_using_subcommand help; and __fish_seen_subcommand_from saml" -f -a "update" -d 'Change a provider: new metadata (certificate rollover), domains, attributes, mapping'
complete -c authctl -n "__fish_authctl_using_subcommand help; and __fish_seen_subcommand_from saml" -f -a "remove" -d 'Remove a provider and its domains (users and their roles stay). Asks first'
complete -c authctl -n "__fish_authctl_using_subcommand help; and __fish_seen_subcommand_from saml" -f -a "metadata" -d 'Print our SP metadata for a provider, for the IdP administrator'
