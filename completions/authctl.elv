
use builtin;
use str;

set edit:completion:arg-completer[authctl] = {|@words|
    fn spaces {|n|
        builtin:repeat $n ' ' | str:join ''
    }
    fn cand {|text desc|
        edit:complex-candidate $text &display=$text' '(spaces (- 14 (wcswidth $text)))$desc
    }
    var command = 'authctl'
    for word $words[1..-1] {
        if (str:has-prefix $word '-') {
            break
        }
        set command = $command';'$word
    }
    var completions = [
        &'authctl'= {
            cand --database-url 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db'
            cand --config 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)'
            cand -o 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)'
            cand --output 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)'
            cand --no-headers 'Print tables without their header line'
            cand -y 'Do not ask before destructive actions (required when stdin is not a terminal)'
            cand --yes 'Do not ask before destructive actions (required when stdin is not a terminal)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
            cand serve 'Run the HTTP service (applies pending migrations first)'
            cand migrate 'Show or apply database migrations'
            cand users 'List, inspect, create, verify, disable and enable accounts'
            cand sessions 'List and revoke users'' sessions; prune ended ones'
            cand verification 'Email verification'
            cand apikeys 'List and revoke users'' API keys'
            cand passkeys 'List and remove users'' passkeys'
            cand scim 'The bearer tokens of SAML providers'' SCIM clients'
            cand mail 'The mail outbox: deliver queued mail now, or see how much waits'
            cand deletion 'Scheduled account deletions and the hard-delete sweep'
            cand audit 'Read the audit log'
            cand saml 'SAML single sign-on: register identity providers for e-mail domains'
            cand completions 'Print shell completions, or write every shell''s file into a folder'
            cand status 'Which configuration, database, server key and public URL commands here use, and whether the database is reachable and current (exit code 1 when not)'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'authctl;serve'= {
            cand --bind 'Address to listen on (default 127.0.0.1:3000)'
            cand --public-url 'The URL users reach the service at; used in mailed links (default http://localhost:3000)'
            cand --database-url 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db'
            cand --config 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)'
            cand -o 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)'
            cand --output 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)'
            cand --no-headers 'Print tables without their header line'
            cand -y 'Do not ask before destructive actions (required when stdin is not a terminal)'
            cand --yes 'Do not ask before destructive actions (required when stdin is not a terminal)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'authctl;migrate'= {
            cand --database-url 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db'
            cand --config 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)'
            cand -o 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)'
            cand --output 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)'
            cand --no-headers 'Print tables without their header line'
            cand -y 'Do not ask before destructive actions (required when stdin is not a terminal)'
            cand --yes 'Do not ask before destructive actions (required when stdin is not a terminal)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
            cand status 'Show which migrations are applied (the default)'
            cand up 'Apply every pending migration'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'authctl;migrate;status'= {
            cand --database-url 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db'
            cand --config 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)'
            cand -o 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)'
            cand --output 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)'
            cand --no-headers 'Print tables without their header line'
            cand -y 'Do not ask before destructive actions (required when stdin is not a terminal)'
            cand --yes 'Do not ask before destructive actions (required when stdin is not a terminal)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'authctl;migrate;up'= {
            cand --database-url 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db'
            cand --config 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)'
            cand -o 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)'
            cand --output 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)'
            cand --no-headers 'Print tables without their header line'
            cand -y 'Do not ask before destructive actions (required when stdin is not a terminal)'
            cand --yes 'Do not ask before destructive actions (required when stdin is not a terminal)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'authctl;migrate;help'= {
            cand status 'Show which migrations are applied (the default)'
            cand up 'Apply every pending migration'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'authctl;migrate;help;status'= {
        }
        &'authctl;migrate;help;up'= {
        }
        &'authctl;migrate;help;help'= {
        }
        &'authctl;users'= {
            cand --database-url 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db'
            cand --config 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)'
            cand -o 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)'
            cand --output 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)'
            cand --no-headers 'Print tables without their header line'
            cand -y 'Do not ask before destructive actions (required when stdin is not a terminal)'
            cand --yes 'Do not ask before destructive actions (required when stdin is not a terminal)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
            cand list 'List accounts, oldest first'
            cand show 'Show one account, by address or by id'
            cand create 'Create an account. Prompts for a password on a terminal'
            cand verify 'Mark an address as verified without a link'
            cand disable 'Disable an account; its sessions end at once. Asks first (or pass --yes)'
            cand enable 'Enable a disabled account'
            cand history 'Show an account''s login history, newest first'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'authctl;users;list'= {
            cand --limit 'At most N rows (default: 100 when stdout is a terminal, every row otherwise)'
            cand --after 'Start after the row with this id: the last id of the previous page'
            cand --database-url 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db'
            cand --config 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)'
            cand -o 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)'
            cand --output 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)'
            cand --unverified 'Only accounts whose address is not verified'
            cand --no-headers 'Print tables without their header line'
            cand -y 'Do not ask before destructive actions (required when stdin is not a terminal)'
            cand --yes 'Do not ask before destructive actions (required when stdin is not a terminal)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'authctl;users;show'= {
            cand --database-url 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db'
            cand --config 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)'
            cand -o 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)'
            cand --output 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)'
            cand --no-headers 'Print tables without their header line'
            cand -y 'Do not ask before destructive actions (required when stdin is not a terminal)'
            cand --yes 'Do not ask before destructive actions (required when stdin is not a terminal)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'authctl;users;create'= {
            cand --name 'Display name'
            cand --database-url 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db'
            cand --config 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)'
            cand -o 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)'
            cand --output 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)'
            cand --verified 'Mark the address as verified. Without it, the address is mailed a verification link'
            cand --password-stdin 'Read the password from the first line of stdin (for scripts)'
            cand --no-password 'Create the account without a password (it cannot sign in with one until it gets one)'
            cand --no-headers 'Print tables without their header line'
            cand -y 'Do not ask before destructive actions (required when stdin is not a terminal)'
            cand --yes 'Do not ask before destructive actions (required when stdin is not a terminal)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'authctl;users;verify'= {
            cand --database-url 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db'
            cand --config 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)'
            cand -o 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)'
            cand --output 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)'
            cand --no-headers 'Print tables without their header line'
            cand -y 'Do not ask before destructive actions (required when stdin is not a terminal)'
            cand --yes 'Do not ask before destructive actions (required when stdin is not a terminal)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'authctl;users;disable'= {
            cand --database-url 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db'
            cand --config 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)'
            cand -o 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)'
            cand --output 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)'
            cand --no-headers 'Print tables without their header line'
            cand -y 'Do not ask before destructive actions (required when stdin is not a terminal)'
            cand --yes 'Do not ask before destructive actions (required when stdin is not a terminal)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'authctl;users;enable'= {
            cand --database-url 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db'
            cand --config 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)'
            cand -o 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)'
            cand --output 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)'
            cand --no-headers 'Print tables without their header line'
            cand -y 'Do not ask before destructive actions (required when stdin is not a terminal)'
            cand --yes 'Do not ask before destructive actions (required when stdin is not a terminal)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'authctl;users;history'= {
            cand --limit 'How many attempts to show'
            cand --database-url 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db'
            cand --config 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)'
            cand -o 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)'
            cand --output 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)'
            cand --no-headers 'Print tables without their header line'
            cand -y 'Do not ask before destructive actions (required when stdin is not a terminal)'
            cand --yes 'Do not ask before destructive actions (required when stdin is not a terminal)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'authctl;users;help'= {
            cand list 'List accounts, oldest first'
            cand show 'Show one account, by address or by id'
            cand create 'Create an account. Prompts for a password on a terminal'
            cand verify 'Mark an address as verified without a link'
            cand disable 'Disable an account; its sessions end at once. Asks first (or pass --yes)'
            cand enable 'Enable a disabled account'
            cand history 'Show an account''s login history, newest first'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'authctl;users;help;list'= {
        }
        &'authctl;users;help;show'= {
        }
        &'authctl;users;help;create'= {
        }
        &'authctl;users;help;verify'= {
        }
        &'authctl;users;help;disable'= {
        }
        &'authctl;users;help;enable'= {
        }
        &'authctl;users;help;history'= {
        }
        &'authctl;users;help;help'= {
        }
        &'authctl;sessions'= {
            cand --database-url 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db'
            cand --config 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)'
            cand -o 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)'
            cand --output 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)'
            cand --no-headers 'Print tables without their header line'
            cand -y 'Do not ask before destructive actions (required when stdin is not a terminal)'
            cand --yes 'Do not ask before destructive actions (required when stdin is not a terminal)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
            cand list 'List an account''s live sessions, newest first'
            cand revoke 'Revoke one session by id, or every session of a user (`--user EMAIL --all`, asks first)'
            cand prune 'Delete ended sessions, spent verification tokens and stale throttle rows now'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'authctl;sessions;list'= {
            cand --user 'The account, by address or id'
            cand --limit 'At most N rows (default: 100 when stdout is a terminal, every row otherwise)'
            cand --after 'Start after the row with this id: the last id of the previous page'
            cand --database-url 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db'
            cand --config 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)'
            cand -o 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)'
            cand --output 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)'
            cand --no-headers 'Print tables without their header line'
            cand -y 'Do not ask before destructive actions (required when stdin is not a terminal)'
            cand --yes 'Do not ask before destructive actions (required when stdin is not a terminal)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'authctl;sessions;revoke'= {
            cand --user 'The account whose sessions end (with --all), by address or id'
            cand --database-url 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db'
            cand --config 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)'
            cand -o 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)'
            cand --output 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)'
            cand --all 'End every session of --user'
            cand --no-headers 'Print tables without their header line'
            cand -y 'Do not ask before destructive actions (required when stdin is not a terminal)'
            cand --yes 'Do not ask before destructive actions (required when stdin is not a terminal)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'authctl;sessions;prune'= {
            cand --database-url 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db'
            cand --config 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)'
            cand -o 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)'
            cand --output 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)'
            cand --no-headers 'Print tables without their header line'
            cand -y 'Do not ask before destructive actions (required when stdin is not a terminal)'
            cand --yes 'Do not ask before destructive actions (required when stdin is not a terminal)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'authctl;sessions;help'= {
            cand list 'List an account''s live sessions, newest first'
            cand revoke 'Revoke one session by id, or every session of a user (`--user EMAIL --all`, asks first)'
            cand prune 'Delete ended sessions, spent verification tokens and stale throttle rows now'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'authctl;sessions;help;list'= {
        }
        &'authctl;sessions;help;revoke'= {
        }
        &'authctl;sessions;help;prune'= {
        }
        &'authctl;sessions;help;help'= {
        }
        &'authctl;verification'= {
            cand --database-url 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db'
            cand --config 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)'
            cand -o 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)'
            cand --output 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)'
            cand --no-headers 'Print tables without their header line'
            cand -y 'Do not ask before destructive actions (required when stdin is not a terminal)'
            cand --yes 'Do not ask before destructive actions (required when stdin is not a terminal)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
            cand resend 'Send a new verification link to an unverified account'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'authctl;verification;resend'= {
            cand --database-url 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db'
            cand --config 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)'
            cand -o 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)'
            cand --output 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)'
            cand --no-headers 'Print tables without their header line'
            cand -y 'Do not ask before destructive actions (required when stdin is not a terminal)'
            cand --yes 'Do not ask before destructive actions (required when stdin is not a terminal)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'authctl;verification;help'= {
            cand resend 'Send a new verification link to an unverified account'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'authctl;verification;help;resend'= {
        }
        &'authctl;verification;help;help'= {
        }
        &'authctl;apikeys'= {
            cand --database-url 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db'
            cand --config 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)'
            cand -o 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)'
            cand --output 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)'
            cand --no-headers 'Print tables without their header line'
            cand -y 'Do not ask before destructive actions (required when stdin is not a terminal)'
            cand --yes 'Do not ask before destructive actions (required when stdin is not a terminal)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
            cand list 'List an account''s API keys, newest first (never the secrets)'
            cand revoke 'Revoke an API key by id; it fails on its very next request'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'authctl;apikeys;list'= {
            cand --user 'The account, by address or id'
            cand --limit 'At most N rows (default: 100 when stdout is a terminal, every row otherwise)'
            cand --after 'Start after the row with this id: the last id of the previous page'
            cand --database-url 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db'
            cand --config 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)'
            cand -o 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)'
            cand --output 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)'
            cand --no-headers 'Print tables without their header line'
            cand -y 'Do not ask before destructive actions (required when stdin is not a terminal)'
            cand --yes 'Do not ask before destructive actions (required when stdin is not a terminal)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'authctl;apikeys;revoke'= {
            cand --database-url 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db'
            cand --config 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)'
            cand -o 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)'
            cand --output 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)'
            cand --no-headers 'Print tables without their header line'
            cand -y 'Do not ask before destructive actions (required when stdin is not a terminal)'
            cand --yes 'Do not ask before destructive actions (required when stdin is not a terminal)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'authctl;apikeys;help'= {
            cand list 'List an account''s API keys, newest first (never the secrets)'
            cand revoke 'Revoke an API key by id; it fails on its very next request'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'authctl;apikeys;help;list'= {
        }
        &'authctl;apikeys;help;revoke'= {
        }
        &'authctl;apikeys;help;help'= {
        }
        &'authctl;passkeys'= {
            cand --database-url 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db'
            cand --config 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)'
            cand -o 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)'
            cand --output 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)'
            cand --no-headers 'Print tables without their header line'
            cand -y 'Do not ask before destructive actions (required when stdin is not a terminal)'
            cand --yes 'Do not ask before destructive actions (required when stdin is not a terminal)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
            cand list 'List an account''s passkeys, newest first (never the public keys)'
            cand remove 'Remove a passkey by id: it fails at its very next use, and its owner is mailed'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'authctl;passkeys;list'= {
            cand --user 'The account, by address or id'
            cand --limit 'At most N rows (default: 100 when stdout is a terminal, every row otherwise)'
            cand --after 'Start after the row with this id: the last id of the previous page'
            cand --database-url 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db'
            cand --config 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)'
            cand -o 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)'
            cand --output 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)'
            cand --no-headers 'Print tables without their header line'
            cand -y 'Do not ask before destructive actions (required when stdin is not a terminal)'
            cand --yes 'Do not ask before destructive actions (required when stdin is not a terminal)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'authctl;passkeys;remove'= {
            cand --database-url 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db'
            cand --config 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)'
            cand -o 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)'
            cand --output 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)'
            cand --no-headers 'Print tables without their header line'
            cand -y 'Do not ask before destructive actions (required when stdin is not a terminal)'
            cand --yes 'Do not ask before destructive actions (required when stdin is not a terminal)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'authctl;passkeys;help'= {
            cand list 'List an account''s passkeys, newest first (never the public keys)'
            cand remove 'Remove a passkey by id: it fails at its very next use, and its owner is mailed'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'authctl;passkeys;help;list'= {
        }
        &'authctl;passkeys;help;remove'= {
        }
        &'authctl;passkeys;help;help'= {
        }
        &'authctl;scim'= {
            cand --database-url 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db'
            cand --config 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)'
            cand -o 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)'
            cand --output 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)'
            cand --no-headers 'Print tables without their header line'
            cand -y 'Do not ask before destructive actions (required when stdin is not a terminal)'
            cand --yes 'Do not ask before destructive actions (required when stdin is not a terminal)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
            cand tokens 'Make, list and revoke the bearer tokens a provider''s IdP provisions users with'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'authctl;scim;tokens'= {
            cand --database-url 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db'
            cand --config 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)'
            cand -o 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)'
            cand --output 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)'
            cand --no-headers 'Print tables without their header line'
            cand -y 'Do not ask before destructive actions (required when stdin is not a terminal)'
            cand --yes 'Do not ask before destructive actions (required when stdin is not a terminal)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
            cand create 'Make a token for a provider''s SCIM client. The token is written to a new file (mode 600), never to stdout: paste it into the IdP, then delete the file'
            cand list 'List SCIM tokens (never the secrets), newest first'
            cand revoke 'Revoke a SCIM token by id; its next request gets 401'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'authctl;scim;tokens;create'= {
            cand --provider 'The SAML provider whose users and groups the token may change'
            cand --name 'A label for the token'
            cand --token-file 'Where to write the token (the file must not exist yet)'
            cand --database-url 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db'
            cand --config 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)'
            cand -o 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)'
            cand --output 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)'
            cand --no-headers 'Print tables without their header line'
            cand -y 'Do not ask before destructive actions (required when stdin is not a terminal)'
            cand --yes 'Do not ask before destructive actions (required when stdin is not a terminal)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'authctl;scim;tokens;list'= {
            cand --provider 'Only this provider''s tokens'
            cand --database-url 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db'
            cand --config 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)'
            cand -o 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)'
            cand --output 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)'
            cand --no-headers 'Print tables without their header line'
            cand -y 'Do not ask before destructive actions (required when stdin is not a terminal)'
            cand --yes 'Do not ask before destructive actions (required when stdin is not a terminal)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'authctl;scim;tokens;revoke'= {
            cand --database-url 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db'
            cand --config 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)'
            cand -o 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)'
            cand --output 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)'
            cand --no-headers 'Print tables without their header line'
            cand -y 'Do not ask before destructive actions (required when stdin is not a terminal)'
            cand --yes 'Do not ask before destructive actions (required when stdin is not a terminal)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'authctl;scim;tokens;help'= {
            cand create 'Make a token for a provider''s SCIM client. The token is written to a new file (mode 600), never to stdout: paste it into the IdP, then delete the file'
            cand list 'List SCIM tokens (never the secrets), newest first'
            cand revoke 'Revoke a SCIM token by id; its next request gets 401'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'authctl;scim;tokens;help;create'= {
        }
        &'authctl;scim;tokens;help;list'= {
        }
        &'authctl;scim;tokens;help;revoke'= {
        }
        &'authctl;scim;tokens;help;help'= {
        }
        &'authctl;scim;help'= {
            cand tokens 'Make, list and revoke the bearer tokens a provider''s IdP provisions users with'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'authctl;scim;help;tokens'= {
            cand create 'Make a token for a provider''s SCIM client. The token is written to a new file (mode 600), never to stdout: paste it into the IdP, then delete the file'
            cand list 'List SCIM tokens (never the secrets), newest first'
            cand revoke 'Revoke a SCIM token by id; its next request gets 401'
        }
        &'authctl;scim;help;tokens;create'= {
        }
        &'authctl;scim;help;tokens;list'= {
        }
        &'authctl;scim;help;tokens;revoke'= {
        }
        &'authctl;scim;help;help'= {
        }
        &'authctl;mail'= {
            cand --database-url 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db'
            cand --config 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)'
            cand -o 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)'
            cand --output 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)'
            cand --no-headers 'Print tables without their header line'
            cand -y 'Do not ask before destructive actions (required when stdin is not a terminal)'
            cand --yes 'Do not ask before destructive actions (required when stdin is not a terminal)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
            cand deliver 'Deliver every queued mail that is due now, over the configured transport'
            cand status 'How many mails wait in the outbox, and how many were given up'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'authctl;mail;deliver'= {
            cand --database-url 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db'
            cand --config 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)'
            cand -o 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)'
            cand --output 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)'
            cand --no-headers 'Print tables without their header line'
            cand -y 'Do not ask before destructive actions (required when stdin is not a terminal)'
            cand --yes 'Do not ask before destructive actions (required when stdin is not a terminal)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'authctl;mail;status'= {
            cand --database-url 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db'
            cand --config 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)'
            cand -o 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)'
            cand --output 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)'
            cand --no-headers 'Print tables without their header line'
            cand -y 'Do not ask before destructive actions (required when stdin is not a terminal)'
            cand --yes 'Do not ask before destructive actions (required when stdin is not a terminal)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'authctl;mail;help'= {
            cand deliver 'Deliver every queued mail that is due now, over the configured transport'
            cand status 'How many mails wait in the outbox, and how many were given up'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'authctl;mail;help;deliver'= {
        }
        &'authctl;mail;help;status'= {
        }
        &'authctl;mail;help;help'= {
        }
        &'authctl;deletion'= {
            cand --database-url 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db'
            cand --config 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)'
            cand -o 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)'
            cand --output 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)'
            cand --no-headers 'Print tables without their header line'
            cand -y 'Do not ask before destructive actions (required when stdin is not a terminal)'
            cand --yes 'Do not ask before destructive actions (required when stdin is not a terminal)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
            cand list 'Accounts waiting for deletion, soonest first, with their dates'
            cand schedule 'Schedule an account for deletion (its sessions and API keys end at once). Asks first'
            cand cancel 'Cancel a scheduled deletion'
            cand sweep 'Hard-delete every account whose grace period has passed. Safe to run from cron and on several machines at once'
            cand events 'The outbox of `user.deleted` events for downstream systems, newest first, with their webhook delivery'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'authctl;deletion;list'= {
            cand --database-url 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db'
            cand --config 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)'
            cand -o 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)'
            cand --output 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)'
            cand --no-headers 'Print tables without their header line'
            cand -y 'Do not ask before destructive actions (required when stdin is not a terminal)'
            cand --yes 'Do not ask before destructive actions (required when stdin is not a terminal)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'authctl;deletion;schedule'= {
            cand --grace 'The grace period before the hard delete (default: deletion.grace_period)'
            cand --database-url 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db'
            cand --config 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)'
            cand -o 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)'
            cand --output 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)'
            cand --no-headers 'Print tables without their header line'
            cand -y 'Do not ask before destructive actions (required when stdin is not a terminal)'
            cand --yes 'Do not ask before destructive actions (required when stdin is not a terminal)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'authctl;deletion;cancel'= {
            cand --database-url 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db'
            cand --config 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)'
            cand -o 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)'
            cand --output 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)'
            cand --no-headers 'Print tables without their header line'
            cand -y 'Do not ask before destructive actions (required when stdin is not a terminal)'
            cand --yes 'Do not ask before destructive actions (required when stdin is not a terminal)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'authctl;deletion;sweep'= {
            cand --batch-size 'Accounts per batch, one transaction each, 1 to 1000 (default: deletion.batch_size)'
            cand --database-url 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db'
            cand --config 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)'
            cand -o 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)'
            cand --output 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)'
            cand --dry-run 'Only print, per table, what would be deleted or anonymized'
            cand --no-headers 'Print tables without their header line'
            cand -y 'Do not ask before destructive actions (required when stdin is not a terminal)'
            cand --yes 'Do not ask before destructive actions (required when stdin is not a terminal)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'authctl;deletion;events'= {
            cand --limit 'At most N rows (default: 100 when stdout is a terminal, every row otherwise)'
            cand --after 'Start after the row with this id: the last id of the previous page'
            cand --database-url 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db'
            cand --config 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)'
            cand -o 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)'
            cand --output 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)'
            cand --no-headers 'Print tables without their header line'
            cand -y 'Do not ask before destructive actions (required when stdin is not a terminal)'
            cand --yes 'Do not ask before destructive actions (required when stdin is not a terminal)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'authctl;deletion;help'= {
            cand list 'Accounts waiting for deletion, soonest first, with their dates'
            cand schedule 'Schedule an account for deletion (its sessions and API keys end at once). Asks first'
            cand cancel 'Cancel a scheduled deletion'
            cand sweep 'Hard-delete every account whose grace period has passed. Safe to run from cron and on several machines at once'
            cand events 'The outbox of `user.deleted` events for downstream systems, newest first, with their webhook delivery'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'authctl;deletion;help;list'= {
        }
        &'authctl;deletion;help;schedule'= {
        }
        &'authctl;deletion;help;cancel'= {
        }
        &'authctl;deletion;help;sweep'= {
        }
        &'authctl;deletion;help;events'= {
        }
        &'authctl;deletion;help;help'= {
        }
        &'authctl;audit'= {
            cand --database-url 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db'
            cand --config 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)'
            cand -o 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)'
            cand --output 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)'
            cand --no-headers 'Print tables without their header line'
            cand -y 'Do not ask before destructive actions (required when stdin is not a terminal)'
            cand --yes 'Do not ask before destructive actions (required when stdin is not a terminal)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
            cand list 'List audit events, newest first, with the account''s address while it exists'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'authctl;audit;list'= {
            cand --user 'Only events about this account, by address or id'
            cand --since 'Only events since this long ago (`2h`, `7d`) or since an RFC 3339 time'
            cand --limit 'At most N rows (default: 100 when stdout is a terminal, every row otherwise)'
            cand --after 'Start after the row with this id: the last id of the previous page'
            cand --database-url 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db'
            cand --config 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)'
            cand -o 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)'
            cand --output 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)'
            cand --no-headers 'Print tables without their header line'
            cand -y 'Do not ask before destructive actions (required when stdin is not a terminal)'
            cand --yes 'Do not ask before destructive actions (required when stdin is not a terminal)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'authctl;audit;help'= {
            cand list 'List audit events, newest first, with the account''s address while it exists'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'authctl;audit;help;list'= {
        }
        &'authctl;audit;help;help'= {
        }
        &'authctl;saml'= {
            cand --database-url 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db'
            cand --config 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)'
            cand -o 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)'
            cand --output 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)'
            cand --no-headers 'Print tables without their header line'
            cand -y 'Do not ask before destructive actions (required when stdin is not a terminal)'
            cand --yes 'Do not ask before destructive actions (required when stdin is not a terminal)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
            cand add 'Register an identity provider from its metadata for one or more e-mail domains'
            cand list 'List providers: entity ID, domains, certificate expiry, last login'
            cand show 'Show one provider, with what the IdP admin needs (our entity ID and ACS URL)'
            cand update 'Change a provider: new metadata (certificate rollover), domains, attributes, mapping'
            cand remove 'Remove a provider and its domains (users and their roles stay). Asks first'
            cand metadata 'Print our SP metadata for a provider, for the IdP administrator'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'authctl;saml;add'= {
            cand --metadata-file 'The IdP''s metadata XML file'
            cand --metadata-url 'The IdP''s metadata URL (fetched once, now)'
            cand --domain 'An e-mail domain this provider serves (repeat for several)'
            cand --email-attribute 'The attribute holding the e-mail address (default: email, mail, the OID or the claims URI; else the NameID)'
            cand --name-attribute 'The attribute holding the display name (default: name, displayName, cn, ...)'
            cand --groups-attribute 'The multi-valued attribute holding group names (default: groups, memberOf, ...)'
            cand --map-group 'Give members of GROUP the role ROLE (repeat for several)'
            cand --default-role 'A role every user of this provider gets'
            cand --link-policy 'Whether an existing account with the same, verified address may be linked'
            cand --trust-idp-mfa 'Trust this IdP''s multi-factor sign-in when the assertion''s AuthnContextClassRef is CLASSREF (repeat for several): accounts with an authenticator app then skip its code. Without it they are asked for their code after SSO'
            cand --database-url 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db'
            cand --config 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)'
            cand -o 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)'
            cand --output 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)'
            cand --no-headers 'Print tables without their header line'
            cand -y 'Do not ask before destructive actions (required when stdin is not a terminal)'
            cand --yes 'Do not ask before destructive actions (required when stdin is not a terminal)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'authctl;saml;list'= {
            cand --database-url 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db'
            cand --config 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)'
            cand -o 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)'
            cand --output 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)'
            cand --no-headers 'Print tables without their header line'
            cand -y 'Do not ask before destructive actions (required when stdin is not a terminal)'
            cand --yes 'Do not ask before destructive actions (required when stdin is not a terminal)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'authctl;saml;show'= {
            cand --database-url 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db'
            cand --config 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)'
            cand -o 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)'
            cand --output 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)'
            cand --no-headers 'Print tables without their header line'
            cand -y 'Do not ask before destructive actions (required when stdin is not a terminal)'
            cand --yes 'Do not ask before destructive actions (required when stdin is not a terminal)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'authctl;saml;update'= {
            cand --metadata-file 'The IdP''s metadata XML file'
            cand --metadata-url 'The IdP''s metadata URL (fetched once, now)'
            cand --domain 'Replace the domain list (repeat for several)'
            cand --email-attribute 'The attribute holding the e-mail address (default: email, mail, the OID or the claims URI; else the NameID)'
            cand --name-attribute 'The attribute holding the display name (default: name, displayName, cn, ...)'
            cand --groups-attribute 'The multi-valued attribute holding group names (default: groups, memberOf, ...)'
            cand --map-group 'Replace the group mapping (repeat for several)'
            cand --default-role 'default-role'
            cand --link-policy 'link-policy'
            cand --remove-certificate 'Stop accepting the signing certificate with this SHA-256 fingerprint (8+ hex digits)'
            cand --trust-idp-mfa 'Replace the AuthnContextClassRef values trusted as multi-factor (repeat for several)'
            cand --database-url 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db'
            cand --config 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)'
            cand -o 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)'
            cand --output 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)'
            cand --clear-group-map 'Remove every group mapping'
            cand --no-default-role 'Stop giving a default role'
            cand --no-trust-idp-mfa 'Trust no multi-factor claim of this IdP: authenticator-app accounts give their code'
            cand --no-headers 'Print tables without their header line'
            cand -y 'Do not ask before destructive actions (required when stdin is not a terminal)'
            cand --yes 'Do not ask before destructive actions (required when stdin is not a terminal)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'authctl;saml;remove'= {
            cand --database-url 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db'
            cand --config 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)'
            cand -o 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)'
            cand --output 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)'
            cand --no-headers 'Print tables without their header line'
            cand -y 'Do not ask before destructive actions (required when stdin is not a terminal)'
            cand --yes 'Do not ask before destructive actions (required when stdin is not a terminal)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'authctl;saml;metadata'= {
            cand --database-url 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db'
            cand --config 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)'
            cand -o 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)'
            cand --output 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)'
            cand --no-headers 'Print tables without their header line'
            cand -y 'Do not ask before destructive actions (required when stdin is not a terminal)'
            cand --yes 'Do not ask before destructive actions (required when stdin is not a terminal)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'authctl;saml;help'= {
            cand add 'Register an identity provider from its metadata for one or more e-mail domains'
            cand list 'List providers: entity ID, domains, certificate expiry, last login'
            cand show 'Show one provider, with what the IdP admin needs (our entity ID and ACS URL)'
            cand update 'Change a provider: new metadata (certificate rollover), domains, attributes, mapping'
            cand remove 'Remove a provider and its domains (users and their roles stay). Asks first'
            cand metadata 'Print our SP metadata for a provider, for the IdP administrator'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'authctl;saml;help;add'= {
        }
        &'authctl;saml;help;list'= {
        }
        &'authctl;saml;help;show'= {
        }
        &'authctl;saml;help;update'= {
        }
        &'authctl;saml;help;remove'= {
        }
        &'authctl;saml;help;metadata'= {
        }
        &'authctl;saml;help;help'= {
        }
        &'authctl;completions'= {
            cand --dir 'Write the completions of every supported shell into this folder (it must exist)'
            cand --database-url 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db'
            cand --config 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)'
            cand -o 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)'
            cand --output 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)'
            cand --no-headers 'Print tables without their header line'
            cand -y 'Do not ask before destructive actions (required when stdin is not a terminal)'
            cand --yes 'Do not ask before destructive actions (required when stdin is not a terminal)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'authctl;status'= {
            cand --database-url 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db'
            cand --config 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)'
            cand -o 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)'
            cand --output 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)'
            cand --no-headers 'Print tables without their header line'
            cand -y 'Do not ask before destructive actions (required when stdin is not a terminal)'
            cand --yes 'Do not ask before destructive actions (required when stdin is not a terminal)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'authctl;help'= {
            cand serve 'Run the HTTP service (applies pending migrations first)'
            cand migrate 'Show or apply database migrations'
            cand users 'List, inspect, create, verify, disable and enable accounts'
            cand sessions 'List and revoke users'' sessions; prune ended ones'
            cand verification 'Email verification'
            cand apikeys 'List and revoke users'' API keys'
            cand passkeys 'List and remove users'' passkeys'
            cand scim 'The bearer tokens of SAML providers'' SCIM clients'
            cand mail 'The mail outbox: deliver queued mail now, or see how much waits'
            cand deletion 'Scheduled account deletions and the hard-delete sweep'
            cand audit 'Read the audit log'
            cand saml 'SAML single sign-on: register identity providers for e-mail domains'
            cand completions 'Print shell completions, or write every shell''s file into a folder'
            cand status 'Which configuration, database, server key and public URL commands here use, and whether the database is reachable and current (exit code 1 when not)'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'authctl;help;serve'= {
        }
        &'authctl;help;migrate'= {
            cand status 'Show which migrations are applied (the default)'
            cand up 'Apply every pending migration'
        }
        &'authctl;help;migrate;status'= {
        }
        &'authctl;help;migrate;up'= {
        }
        &'authctl;help;users'= {
            cand list 'List accounts, oldest first'
            cand show 'Show one account, by address or by id'
            cand create 'Create an account. Prompts for a password on a terminal'
            cand verify 'Mark an address as verified without a link'
            cand disable 'Disable an account; its sessions end at once. Asks first (or pass --yes)'
            cand enable 'Enable a disabled account'
            cand history 'Show an account''s login history, newest first'
        }
        &'authctl;help;users;list'= {
        }
        &'authctl;help;users;show'= {
        }
        &'authctl;help;users;create'= {
        }
        &'authctl;help;users;verify'= {
        }
        &'authctl;help;users;disable'= {
        }
        &'authctl;help;users;enable'= {
        }
        &'authctl;help;users;history'= {
        }
        &'authctl;help;sessions'= {
            cand list 'List an account''s live sessions, newest first'
            cand revoke 'Revoke one session by id, or every session of a user (`--user EMAIL --all`, asks first)'
            cand prune 'Delete ended sessions, spent verification tokens and stale throttle rows now'
        }
        &'authctl;help;sessions;list'= {
        }
        &'authctl;help;sessions;revoke'= {
        }
        &'authctl;help;sessions;prune'= {
        }
        &'authctl;help;verification'= {
            cand resend 'Send a new verification link to an unverified account'
        }
        &'authctl;help;verification;resend'= {
        }
        &'authctl;help;apikeys'= {
            cand list 'List an account''s API keys, newest first (never the secrets)'
            cand revoke 'Revoke an API key by id; it fails on its very next request'
        }
        &'authctl;help;apikeys;list'= {
        }
        &'authctl;help;apikeys;revoke'= {
        }
        &'authctl;help;passkeys'= {
            cand list 'List an account''s passkeys, newest first (never the public keys)'
            cand remove 'Remove a passkey by id: it fails at its very next use, and its owner is mailed'
        }
        &'authctl;help;passkeys;list'= {
        }
        &'authctl;help;passkeys;remove'= {
        }
        &'authctl;help;scim'= {
            cand tokens 'Make, list and revoke the bearer tokens a provider''s IdP provisions users with'
        }
        &'authctl;help;scim;tokens'= {
            cand create 'Make a token for a provider''s SCIM client. The token is written to a new file (mode 600), never to stdout: paste it into the IdP, then delete the file'
            cand list 'List SCIM tokens (never the secrets), newest first'
            cand revoke 'Revoke a SCIM token by id; its next request gets 401'
        }
        &'authctl;help;scim;tokens;create'= {
        }
        &'authctl;help;scim;tokens;list'= {
        }
        &'authctl;help;scim;tokens;revoke'= {
        }
        &'authctl;help;mail'= {
            cand deliver 'Deliver every queued mail that is due now, over the configured transport'
            cand status 'How many mails wait in the outbox, and how many were given up'
        }
        &'authctl;help;mail;deliver'= {
        }
        &'authctl;help;mail;status'= {
        }
        &'authctl;help;deletion'= {
            cand list 'Accounts waiting for deletion, soonest first, with their dates'
            cand schedule 'Schedule an account for deletion (its sessions and API keys end at once). Asks first'
            cand cancel 'Cancel a scheduled deletion'
            cand sweep 'Hard-delete every account whose grace period has passed. Safe to run from cron and on several machines at once'
            cand events 'The outbox of `user.deleted` events for downstream systems, newest first, with their webhook delivery'
        }
        &'authctl;help;deletion;list'= {
        }
        &'authctl;help;deletion;schedule'= {
        }
        &'authctl;help;deletion;cancel'= {
        }
        &'authctl;help;deletion;sweep'= {
        }
        &'authctl;help;deletion;events'= {
        }
        &'authctl;help;audit'= {
            cand list 'List audit events, newest first, with the account''s address while it exists'
        }
        &'authctl;help;audit;list'= {
        }
        &'authctl;help;saml'= {
            cand add 'Register an identity provider from its metadata for one or more e-mail domains'
            cand list 'List providers: entity ID, domains, certificate expiry, last login'
            cand show 'Show one provider, with what the IdP admin needs (our entity ID and ACS URL)'
            cand update 'Change a provider: new metadata (certificate rollover), domains, attributes, mapping'
            cand remove 'Remove a provider and its domains (users and their roles stay). Asks first'
            cand metadata 'Print our SP metadata for a provider, for the IdP administrator'
        }
        &'authctl;help;saml;add'= {
        }
        &'authctl;help;saml;list'= {
        }
        &'authctl;help;saml;show'= {
        }
        &'authctl;help;saml;update'= {
        }
        &'authctl;help;saml;remove'= {
        }
        &'authctl;help;saml;metadata'= {
        }
        &'authctl;help;completions'= {
        }
        &'authctl;help;status'= {
        }
        &'authctl;help;help'= {
        }
    ]
    $completions[$command]
}
