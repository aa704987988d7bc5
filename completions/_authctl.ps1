
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'authctl' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'authctl'
        for ($i = 1; $i -lt $commandElements.Count; $i++) {
            $element = $commandElements[$i]
            if ($element -isnot [StringConstantExpressionAst] -or
                $element.StringConstantType -ne [StringConstantType]::BareWord -or
                $element.Value.StartsWith('-') -or
                $element.Value -eq $wordToComplete) {
                break
        }
        $element.Value
    }) -join ';'

    $completions = @(switch ($command) {
        'authctl' {
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)')
            [CompletionResult]::new('--no-headers', '--no-headers', [CompletionResultType]::ParameterName, 'Print tables without their header line')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Do not ask before destructive actions (required when stdin is not a terminal)')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Do not ask before destructive actions (required when stdin is not a terminal)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('serve', 'serve', [CompletionResultType]::ParameterValue, 'Run the HTTP service (applies pending migrations first)')
            [CompletionResult]::new('migrate', 'migrate', [CompletionResultType]::ParameterValue, 'Show or apply database migrations')
            [CompletionResult]::new('users', 'users', [CompletionResultType]::ParameterValue, 'List, inspect, create, verify, disable and enable accounts')
            [CompletionResult]::new('sessions', 'sessions', [CompletionResultType]::ParameterValue, 'List and revoke users'' sessions; prune ended ones')
            [CompletionResult]::new('verification', 'verification', [CompletionResultType]::ParameterValue, 'Email verification')
            [CompletionResult]::new('apikeys', 'apikeys', [CompletionResultType]::ParameterValue, 'List and revoke users'' API keys')
            [CompletionResult]::new('passkeys', 'passkeys', [CompletionResultType]::ParameterValue, 'List and remove users'' passkeys')
            [CompletionResult]::new('scim', 'scim', [CompletionResultType]::ParameterValue, 'The bearer tokens of SAML providers'' SCIM clients')
            [CompletionResult]::new('mail', 'mail', [CompletionResultType]::ParameterValue, 'The mail outbox: deliver queued mail now, or see how much waits')
            [CompletionResult]::new('deletion', 'deletion', [CompletionResultType]::ParameterValue, 'Scheduled account deletions and the hard-delete sweep')
            [CompletionResult]::new('audit', 'audit', [CompletionResultType]::ParameterValue, 'Read the audit log')
            [CompletionResult]::new('saml', 'saml', [CompletionResultType]::ParameterValue, 'SAML single sign-on: register identity providers for e-mail domains')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print shell completions, or write every shell''s file into a folder')
            [CompletionResult]::new('status', 'status', [CompletionResultType]::ParameterValue, 'Which configuration, database, server key and public URL commands here use, and whether the database is reachable and current (exit code 1 when not)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'authctl;serve' {
            [CompletionResult]::new('--bind', '--bind', [CompletionResultType]::ParameterName, 'Address to listen on (default 127.0.0.1:3000)')
            [CompletionResult]::new('--public-url', '--public-url', [CompletionResultType]::ParameterName, 'The URL users reach the service at; used in mailed links (default http://localhost:3000)')
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)')
            [CompletionResult]::new('--no-headers', '--no-headers', [CompletionResultType]::ParameterName, 'Print tables without their header line')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Do not ask before destructive actions (required when stdin is not a terminal)')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Do not ask before destructive actions (required when stdin is not a terminal)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'authctl;migrate' {
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)')
            [CompletionResult]::new('--no-headers', '--no-headers', [CompletionResultType]::ParameterName, 'Print tables without their header line')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Do not ask before destructive actions (required when stdin is not a terminal)')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Do not ask before destructive actions (required when stdin is not a terminal)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('status', 'status', [CompletionResultType]::ParameterValue, 'Show which migrations are applied (the default)')
            [CompletionResult]::new('up', 'up', [CompletionResultType]::ParameterValue, 'Apply every pending migration')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'authctl;migrate;status' {
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)')
            [CompletionResult]::new('--no-headers', '--no-headers', [CompletionResultType]::ParameterName, 'Print tables without their header line')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Do not ask before destructive actions (required when stdin is not a terminal)')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Do not ask before destructive actions (required when stdin is not a terminal)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'authctl;migrate;up' {
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)')
            [CompletionResult]::new('--no-headers', '--no-headers', [CompletionResultType]::ParameterName, 'Print tables without their header line')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Do not ask before destructive actions (required when stdin is not a terminal)')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Do not ask before destructive actions (required when stdin is not a terminal)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'authctl;migrate;help' {
            [CompletionResult]::new('status', 'status', [CompletionResultType]::ParameterValue, 'Show which migrations are applied (the default)')
            [CompletionResult]::new('up', 'up', [CompletionResultType]::ParameterValue, 'Apply every pending migration')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'authctl;migrate;help;status' {
            break
        }
        'authctl;migrate;help;up' {
            break
        }
        'authctl;migrate;help;help' {
            break
        }
        'authctl;users' {
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)')
            [CompletionResult]::new('--no-headers', '--no-headers', [CompletionResultType]::ParameterName, 'Print tables without their header line')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Do not ask before destructive actions (required when stdin is not a terminal)')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Do not ask before destructive actions (required when stdin is not a terminal)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List accounts, oldest first')
            [CompletionResult]::new('show', 'show', [CompletionResultType]::ParameterValue, 'Show one account, by address or by id')
            [CompletionResult]::new('create', 'create', [CompletionResultType]::ParameterValue, 'Create an account. Prompts for a password on a terminal')
            [CompletionResult]::new('verify', 'verify', [CompletionResultType]::ParameterValue, 'Mark an address as verified without a link')
            [CompletionResult]::new('disable', 'disable', [CompletionResultType]::ParameterValue, 'Disable an account; its sessions end at once. Asks first (or pass --yes)')
            [CompletionResult]::new('enable', 'enable', [CompletionResultType]::ParameterValue, 'Enable a disabled account')
            [CompletionResult]::new('history', 'history', [CompletionResultType]::ParameterValue, 'Show an account''s login history, newest first')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'authctl;users;list' {
            [CompletionResult]::new('--limit', '--limit', [CompletionResultType]::ParameterName, 'At most N rows (default: 100 when stdout is a terminal, every row otherwise)')
            [CompletionResult]::new('--after', '--after', [CompletionResultType]::ParameterName, 'Start after the row with this id: the last id of the previous page')
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)')
            [CompletionResult]::new('--unverified', '--unverified', [CompletionResultType]::ParameterName, 'Only accounts whose address is not verified')
            [CompletionResult]::new('--no-headers', '--no-headers', [CompletionResultType]::ParameterName, 'Print tables without their header line')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Do not ask before destructive actions (required when stdin is not a terminal)')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Do not ask before destructive actions (required when stdin is not a terminal)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'authctl;users;show' {
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)')
            [CompletionResult]::new('--no-headers', '--no-headers', [CompletionResultType]::ParameterName, 'Print tables without their header line')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Do not ask before destructive actions (required when stdin is not a terminal)')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Do not ask before destructive actions (required when stdin is not a terminal)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'authctl;users;create' {
            [CompletionResult]::new('--name', '--name', [CompletionResultType]::ParameterName, 'Display name')
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)')
            [CompletionResult]::new('--verified', '--verified', [CompletionResultType]::ParameterName, 'Mark the address as verified. Without it, the address is mailed a verification link')
            [CompletionResult]::new('--password-stdin', '--password-stdin', [CompletionResultType]::ParameterName, 'Read the password from the first line of stdin (for scripts)')
            [CompletionResult]::new('--no-password', '--no-password', [CompletionResultType]::ParameterName, 'Create the account without a password (it cannot sign in with one until it gets one)')
            [CompletionResult]::new('--no-headers', '--no-headers', [CompletionResultType]::ParameterName, 'Print tables without their header line')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Do not ask before destructive actions (required when stdin is not a terminal)')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Do not ask before destructive actions (required when stdin is not a terminal)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'authctl;users;verify' {
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)')
            [CompletionResult]::new('--no-headers', '--no-headers', [CompletionResultType]::ParameterName, 'Print tables without their header line')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Do not ask before destructive actions (required when stdin is not a terminal)')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Do not ask before destructive actions (required when stdin is not a terminal)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'authctl;users;disable' {
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)')
            [CompletionResult]::new('--no-headers', '--no-headers', [CompletionResultType]::ParameterName, 'Print tables without their header line')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Do not ask before destructive actions (required when stdin is not a terminal)')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Do not ask before destructive actions (required when stdin is not a terminal)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'authctl;users;enable' {
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)')
            [CompletionResult]::new('--no-headers', '--no-headers', [CompletionResultType]::ParameterName, 'Print tables without their header line')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Do not ask before destructive actions (required when stdin is not a terminal)')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Do not ask before destructive actions (required when stdin is not a terminal)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'authctl;users;history' {
            [CompletionResult]::new('--limit', '--limit', [CompletionResultType]::ParameterName, 'How many attempts to show')
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)')
            [CompletionResult]::new('--no-headers', '--no-headers', [CompletionResultType]::ParameterName, 'Print tables without their header line')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Do not ask before destructive actions (required when stdin is not a terminal)')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Do not ask before destructive actions (required when stdin is not a terminal)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'authctl;users;help' {
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List accounts, oldest first')
            [CompletionResult]::new('show', 'show', [CompletionResultType]::ParameterValue, 'Show one account, by address or by id')
            [CompletionResult]::new('create', 'create', [CompletionResultType]::ParameterValue, 'Create an account. Prompts for a password on a terminal')
            [CompletionResult]::new('verify', 'verify', [CompletionResultType]::ParameterValue, 'Mark an address as verified without a link')
            [CompletionResult]::new('disable', 'disable', [CompletionResultType]::ParameterValue, 'Disable an account; its sessions end at once. Asks first (or pass --yes)')
            [CompletionResult]::new('enable', 'enable', [CompletionResultType]::ParameterValue, 'Enable a disabled account')
            [CompletionResult]::new('history', 'history', [CompletionResultType]::ParameterValue, 'Show an account''s login history, newest first')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'authctl;users;help;list' {
            break
        }
        'authctl;users;help;show' {
            break
        }
        'authctl;users;help;create' {
            break
        }
        'authctl;users;help;verify' {
            break
        }
        'authctl;users;help;disable' {
            break
        }
        'authctl;users;help;enable' {
            break
        }
        'authctl;users;help;history' {
            break
        }
        'authctl;users;help;help' {
            break
        }
        'authctl;sessions' {
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)')
            [CompletionResult]::new('--no-headers', '--no-headers', [CompletionResultType]::ParameterName, 'Print tables without their header line')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Do not ask before destructive actions (required when stdin is not a terminal)')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Do not ask before destructive actions (required when stdin is not a terminal)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List an account''s live sessions, newest first')
            [CompletionResult]::new('revoke', 'revoke', [CompletionResultType]::ParameterValue, 'Revoke one session by id, or every session of a user (`--user EMAIL --all`, asks first)')
            [CompletionResult]::new('prune', 'prune', [CompletionResultType]::ParameterValue, 'Delete ended sessions, spent verification tokens and stale throttle rows now')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'authctl;sessions;list' {
            [CompletionResult]::new('--user', '--user', [CompletionResultType]::ParameterName, 'The account, by address or id')
            [CompletionResult]::new('--limit', '--limit', [CompletionResultType]::ParameterName, 'At most N rows (default: 100 when stdout is a terminal, every row otherwise)')
            [CompletionResult]::new('--after', '--after', [CompletionResultType]::ParameterName, 'Start after the row with this id: the last id of the previous page')
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)')
            [CompletionResult]::new('--no-headers', '--no-headers', [CompletionResultType]::ParameterName, 'Print tables without their header line')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Do not ask before destructive actions (required when stdin is not a terminal)')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Do not ask before destructive actions (required when stdin is not a terminal)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'authctl;sessions;revoke' {
            [CompletionResult]::new('--user', '--user', [CompletionResultType]::ParameterName, 'The account whose sessions end (with --all), by address or id')
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)')
            [CompletionResult]::new('--all', '--all', [CompletionResultType]::ParameterName, 'End every session of --user')
            [CompletionResult]::new('--no-headers', '--no-headers', [CompletionResultType]::ParameterName, 'Print tables without their header line')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Do not ask before destructive actions (required when stdin is not a terminal)')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Do not ask before destructive actions (required when stdin is not a terminal)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'authctl;sessions;prune' {
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)')
            [CompletionResult]::new('--no-headers', '--no-headers', [CompletionResultType]::ParameterName, 'Print tables without their header line')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Do not ask before destructive actions (required when stdin is not a terminal)')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Do not ask before destructive actions (required when stdin is not a terminal)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'authctl;sessions;help' {
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List an account''s live sessions, newest first')
            [CompletionResult]::new('revoke', 'revoke', [CompletionResultType]::ParameterValue, 'Revoke one session by id, or every session of a user (`--user EMAIL --all`, asks first)')
            [CompletionResult]::new('prune', 'prune', [CompletionResultType]::ParameterValue, 'Delete ended sessions, spent verification tokens and stale throttle rows now')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'authctl;sessions;help;list' {
            break
        }
        'authctl;sessions;help;revoke' {
            break
        }
        'authctl;sessions;help;prune' {
            break
        }
        'authctl;sessions;help;help' {
            break
        }
        'authctl;verification' {
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)')
            [CompletionResult]::new('--no-headers', '--no-headers', [CompletionResultType]::ParameterName, 'Print tables without their header line')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Do not ask before destructive actions (required when stdin is not a terminal)')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Do not ask before destructive actions (required when stdin is not a terminal)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('resend', 'resend', [CompletionResultType]::ParameterValue, 'Send a new verification link to an unverified account')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'authctl;verification;resend' {
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)')
            [CompletionResult]::new('--no-headers', '--no-headers', [CompletionResultType]::ParameterName, 'Print tables without their header line')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Do not ask before destructive actions (required when stdin is not a terminal)')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Do not ask before destructive actions (required when stdin is not a terminal)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'authctl;verification;help' {
            [CompletionResult]::new('resend', 'resend', [CompletionResultType]::ParameterValue, 'Send a new verification link to an unverified account')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'authctl;verification;help;resend' {
            break
        }
        'authctl;verification;help;help' {
            break
        }
        'authctl;apikeys' {
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)')
            [CompletionResult]::new('--no-headers', '--no-headers', [CompletionResultType]::ParameterName, 'Print tables without their header line')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Do not ask before destructive actions (required when stdin is not a terminal)')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Do not ask before destructive actions (required when stdin is not a terminal)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List an account''s API keys, newest first (never the secrets)')
            [CompletionResult]::new('revoke', 'revoke', [CompletionResultType]::ParameterValue, 'Revoke an API key by id; it fails on its very next request')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'authctl;apikeys;list' {
            [CompletionResult]::new('--user', '--user', [CompletionResultType]::ParameterName, 'The account, by address or id')
            [CompletionResult]::new('--limit', '--limit', [CompletionResultType]::ParameterName, 'At most N rows (default: 100 when stdout is a terminal, every row otherwise)')
            [CompletionResult]::new('--after', '--after', [CompletionResultType]::ParameterName, 'Start after the row with this id: the last id of the previous page')
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)')
            [CompletionResult]::new('--no-headers', '--no-headers', [CompletionResultType]::ParameterName, 'Print tables without their header line')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Do not ask before destructive actions (required when stdin is not a terminal)')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Do not ask before destructive actions (required when stdin is not a terminal)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'authctl;apikeys;revoke' {
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)')
            [CompletionResult]::new('--no-headers', '--no-headers', [CompletionResultType]::ParameterName, 'Print tables without their header line')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Do not ask before destructive actions (required when stdin is not a terminal)')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Do not ask before destructive actions (required when stdin is not a terminal)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'authctl;apikeys;help' {
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List an account''s API keys, newest first (never the secrets)')
            [CompletionResult]::new('revoke', 'revoke', [CompletionResultType]::ParameterValue, 'Revoke an API key by id; it fails on its very next request')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'authctl;apikeys;help;list' {
            break
        }
        'authctl;apikeys;help;revoke' {
            break
        }
        'authctl;apikeys;help;help' {
            break
        }
        'authctl;passkeys' {
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)')
            [CompletionResult]::new('--no-headers', '--no-headers', [CompletionResultType]::ParameterName, 'Print tables without their header line')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Do not ask before destructive actions (required when stdin is not a terminal)')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Do not ask before destructive actions (required when stdin is not a terminal)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List an account''s passkeys, newest first (never the public keys)')
            [CompletionResult]::new('remove', 'remove', [CompletionResultType]::ParameterValue, 'Remove a passkey by id: it fails at its very next use, and its owner is mailed')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'authctl;passkeys;list' {
            [CompletionResult]::new('--user', '--user', [CompletionResultType]::ParameterName, 'The account, by address or id')
            [CompletionResult]::new('--limit', '--limit', [CompletionResultType]::ParameterName, 'At most N rows (default: 100 when stdout is a terminal, every row otherwise)')
            [CompletionResult]::new('--after', '--after', [CompletionResultType]::ParameterName, 'Start after the row with this id: the last id of the previous page')
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)')
            [CompletionResult]::new('--no-headers', '--no-headers', [CompletionResultType]::ParameterName, 'Print tables without their header line')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Do not ask before destructive actions (required when stdin is not a terminal)')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Do not ask before destructive actions (required when stdin is not a terminal)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'authctl;passkeys;remove' {
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)')
            [CompletionResult]::new('--no-headers', '--no-headers', [CompletionResultType]::ParameterName, 'Print tables without their header line')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Do not ask before destructive actions (required when stdin is not a terminal)')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Do not ask before destructive actions (required when stdin is not a terminal)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'authctl;passkeys;help' {
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List an account''s passkeys, newest first (never the public keys)')
            [CompletionResult]::new('remove', 'remove', [CompletionResultType]::ParameterValue, 'Remove a passkey by id: it fails at its very next use, and its owner is mailed')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'authctl;passkeys;help;list' {
            break
        }
        'authctl;passkeys;help;remove' {
            break
        }
        'authctl;passkeys;help;help' {
            break
        }
        'authctl;scim' {
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)')
            [CompletionResult]::new('--no-headers', '--no-headers', [CompletionResultType]::ParameterName, 'Print tables without their header line')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Do not ask before destructive actions (required when stdin is not a terminal)')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Do not ask before destructive actions (required when stdin is not a terminal)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('tokens', 'tokens', [CompletionResultType]::ParameterValue, 'Make, list and revoke the bearer tokens a provider''s IdP provisions users with')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'authctl;scim;tokens' {
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)')
            [CompletionResult]::new('--no-headers', '--no-headers', [CompletionResultType]::ParameterName, 'Print tables without their header line')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Do not ask before destructive actions (required when stdin is not a terminal)')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Do not ask before destructive actions (required when stdin is not a terminal)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('create', 'create', [CompletionResultType]::ParameterValue, 'Make a token for a provider''s SCIM client. The token is written to a new file (mode 600), never to stdout: paste it into the IdP, then delete the file')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List SCIM tokens (never the secrets), newest first')
            [CompletionResult]::new('revoke', 'revoke', [CompletionResultType]::ParameterValue, 'Revoke a SCIM token by id; its next request gets 401')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'authctl;scim;tokens;create' {
            [CompletionResult]::new('--provider', '--provider', [CompletionResultType]::ParameterName, 'The SAML provider whose users and groups the token may change')
            [CompletionResult]::new('--name', '--name', [CompletionResultType]::ParameterName, 'A label for the token')
            [CompletionResult]::new('--token-file', '--token-file', [CompletionResultType]::ParameterName, 'Where to write the token (the file must not exist yet)')
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)')
            [CompletionResult]::new('--no-headers', '--no-headers', [CompletionResultType]::ParameterName, 'Print tables without their header line')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Do not ask before destructive actions (required when stdin is not a terminal)')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Do not ask before destructive actions (required when stdin is not a terminal)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'authctl;scim;tokens;list' {
            [CompletionResult]::new('--provider', '--provider', [CompletionResultType]::ParameterName, 'Only this provider''s tokens')
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)')
            [CompletionResult]::new('--no-headers', '--no-headers', [CompletionResultType]::ParameterName, 'Print tables without their header line')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Do not ask before destructive actions (required when stdin is not a terminal)')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Do not ask before destructive actions (required when stdin is not a terminal)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'authctl;scim;tokens;revoke' {
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)')
            [CompletionResult]::new('--no-headers', '--no-headers', [CompletionResultType]::ParameterName, 'Print tables without their header line')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Do not ask before destructive actions (required when stdin is not a terminal)')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Do not ask before destructive actions (required when stdin is not a terminal)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'authctl;scim;tokens;help' {
            [CompletionResult]::new('create', 'create', [CompletionResultType]::ParameterValue, 'Make a token for a provider''s SCIM client. The token is written to a new file (mode 600), never to stdout: paste it into the IdP, then delete the file')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List SCIM tokens (never the secrets), newest first')
            [CompletionResult]::new('revoke', 'revoke', [CompletionResultType]::ParameterValue, 'Revoke a SCIM token by id; its next request gets 401')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'authctl;scim;tokens;help;create' {
            break
        }
        'authctl;scim;tokens;help;list' {
            break
        }
        'authctl;scim;tokens;help;revoke' {
            break
        }
        'authctl;scim;tokens;help;help' {
            break
        }
        'authctl;scim;help' {
            [CompletionResult]::new('tokens', 'tokens', [CompletionResultType]::ParameterValue, 'Make, list and revoke the bearer tokens a provider''s IdP provisions users with')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'authctl;scim;help;tokens' {
            [CompletionResult]::new('create', 'create', [CompletionResultType]::ParameterValue, 'Make a token for a provider''s SCIM client. The token is written to a new file (mode 600), never to stdout: paste it into the IdP, then delete the file')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List SCIM tokens (never the secrets), newest first')
            [CompletionResult]::new('revoke', 'revoke', [CompletionResultType]::ParameterValue, 'Revoke a SCIM token by id; its next request gets 401')
            break
        }
        'authctl;scim;help;tokens;create' {
            break
        }
        'authctl;scim;help;tokens;list' {
            break
        }
        'authctl;scim;help;tokens;revoke' {
            break
        }
        'authctl;scim;help;help' {
            break
        }
        'authctl;mail' {
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)')
            [CompletionResult]::new('--no-headers', '--no-headers', [CompletionResultType]::ParameterName, 'Print tables without their header line')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Do not ask before destructive actions (required when stdin is not a terminal)')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Do not ask before destructive actions (required when stdin is not a terminal)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('deliver', 'deliver', [CompletionResultType]::ParameterValue, 'Deliver every queued mail that is due now, over the configured transport')
            [CompletionResult]::new('status', 'status', [CompletionResultType]::ParameterValue, 'How many mails wait in the outbox, and how many were given up')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'authctl;mail;deliver' {
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)')
            [CompletionResult]::new('--no-headers', '--no-headers', [CompletionResultType]::ParameterName, 'Print tables without their header line')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Do not ask before destructive actions (required when stdin is not a terminal)')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Do not ask before destructive actions (required when stdin is not a terminal)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'authctl;mail;status' {
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)')
            [CompletionResult]::new('--no-headers', '--no-headers', [CompletionResultType]::ParameterName, 'Print tables without their header line')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Do not ask before destructive actions (required when stdin is not a terminal)')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Do not ask before destructive actions (required when stdin is not a terminal)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'authctl;mail;help' {
            [CompletionResult]::new('deliver', 'deliver', [CompletionResultType]::ParameterValue, 'Deliver every queued mail that is due now, over the configured transport')
            [CompletionResult]::new('status', 'status', [CompletionResultType]::ParameterValue, 'How many mails wait in the outbox, and how many were given up')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'authctl;mail;help;deliver' {
            break
        }
        'authctl;mail;help;status' {
            break
        }
        'authctl;mail;help;help' {
            break
        }
        'authctl;deletion' {
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)')
            [CompletionResult]::new('--no-headers', '--no-headers', [CompletionResultType]::ParameterName, 'Print tables without their header line')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Do not ask before destructive actions (required when stdin is not a terminal)')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Do not ask before destructive actions (required when stdin is not a terminal)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'Accounts waiting for deletion, soonest first, with their dates')
            [CompletionResult]::new('schedule', 'schedule', [CompletionResultType]::ParameterValue, 'Schedule an account for deletion (its sessions and API keys end at once). Asks first')
            [CompletionResult]::new('cancel', 'cancel', [CompletionResultType]::ParameterValue, 'Cancel a scheduled deletion')
            [CompletionResult]::new('sweep', 'sweep', [CompletionResultType]::ParameterValue, 'Hard-delete every account whose grace period has passed. Safe to run from cron and on several machines at once')
            [CompletionResult]::new('events', 'events', [CompletionResultType]::ParameterValue, 'The outbox of `user.deleted` events for downstream systems, newest first, with their webhook delivery')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'authctl;deletion;list' {
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)')
            [CompletionResult]::new('--no-headers', '--no-headers', [CompletionResultType]::ParameterName, 'Print tables without their header line')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Do not ask before destructive actions (required when stdin is not a terminal)')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Do not ask before destructive actions (required when stdin is not a terminal)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'authctl;deletion;schedule' {
            [CompletionResult]::new('--grace', '--grace', [CompletionResultType]::ParameterName, 'The grace period before the hard delete (default: deletion.grace_period)')
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)')
            [CompletionResult]::new('--no-headers', '--no-headers', [CompletionResultType]::ParameterName, 'Print tables without their header line')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Do not ask before destructive actions (required when stdin is not a terminal)')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Do not ask before destructive actions (required when stdin is not a terminal)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'authctl;deletion;cancel' {
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)')
            [CompletionResult]::new('--no-headers', '--no-headers', [CompletionResultType]::ParameterName, 'Print tables without their header line')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Do not ask before destructive actions (required when stdin is not a terminal)')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Do not ask before destructive actions (required when stdin is not a terminal)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'authctl;deletion;sweep' {
            [CompletionResult]::new('--batch-size', '--batch-size', [CompletionResultType]::ParameterName, 'Accounts per batch, one transaction each, 1 to 1000 (default: deletion.batch_size)')
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Only print, per table, what would be deleted or anonymized')
            [CompletionResult]::new('--no-headers', '--no-headers', [CompletionResultType]::ParameterName, 'Print tables without their header line')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Do not ask before destructive actions (required when stdin is not a terminal)')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Do not ask before destructive actions (required when stdin is not a terminal)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'authctl;deletion;events' {
            [CompletionResult]::new('--limit', '--limit', [CompletionResultType]::ParameterName, 'At most N rows (default: 100 when stdout is a terminal, every row otherwise)')
            [CompletionResult]::new('--after', '--after', [CompletionResultType]::ParameterName, 'Start after the row with this id: the last id of the previous page')
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)')
            [CompletionResult]::new('--no-headers', '--no-headers', [CompletionResultType]::ParameterName, 'Print tables without their header line')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Do not ask before destructive actions (required when stdin is not a terminal)')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Do not ask before destructive actions (required when stdin is not a terminal)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'authctl;deletion;help' {
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'Accounts waiting for deletion, soonest first, with their dates')
            [CompletionResult]::new('schedule', 'schedule', [CompletionResultType]::ParameterValue, 'Schedule an account for deletion (its sessions and API keys end at once). Asks first')
            [CompletionResult]::new('cancel', 'cancel', [CompletionResultType]::ParameterValue, 'Cancel a scheduled deletion')
            [CompletionResult]::new('sweep', 'sweep', [CompletionResultType]::ParameterValue, 'Hard-delete every account whose grace period has passed. Safe to run from cron and on several machines at once')
            [CompletionResult]::new('events', 'events', [CompletionResultType]::ParameterValue, 'The outbox of `user.deleted` events for downstream systems, newest first, with their webhook delivery')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'authctl;deletion;help;list' {
            break
        }
        'authctl;deletion;help;schedule' {
            break
        }
        'authctl;deletion;help;cancel' {
            break
        }
        'authctl;deletion;help;sweep' {
            break
        }
        'authctl;deletion;help;events' {
            break
        }
        'authctl;deletion;help;help' {
            break
        }
        'authctl;audit' {
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)')
            [CompletionResult]::new('--no-headers', '--no-headers', [CompletionResultType]::ParameterName, 'Print tables without their header line')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Do not ask before destructive actions (required when stdin is not a terminal)')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Do not ask before destructive actions (required when stdin is not a terminal)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List audit events, newest first, with the account''s address while it exists')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'authctl;audit;list' {
            [CompletionResult]::new('--user', '--user', [CompletionResultType]::ParameterName, 'Only events about this account, by address or id')
            [CompletionResult]::new('--since', '--since', [CompletionResultType]::ParameterName, 'Only events since this long ago (`2h`, `7d`) or since an RFC 3339 time')
            [CompletionResult]::new('--limit', '--limit', [CompletionResultType]::ParameterName, 'At most N rows (default: 100 when stdout is a terminal, every row otherwise)')
            [CompletionResult]::new('--after', '--after', [CompletionResultType]::ParameterName, 'Start after the row with this id: the last id of the previous page')
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)')
            [CompletionResult]::new('--no-headers', '--no-headers', [CompletionResultType]::ParameterName, 'Print tables without their header line')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Do not ask before destructive actions (required when stdin is not a terminal)')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Do not ask before destructive actions (required when stdin is not a terminal)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'authctl;audit;help' {
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List audit events, newest first, with the account''s address while it exists')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'authctl;audit;help;list' {
            break
        }
        'authctl;audit;help;help' {
            break
        }
        'authctl;saml' {
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)')
            [CompletionResult]::new('--no-headers', '--no-headers', [CompletionResultType]::ParameterName, 'Print tables without their header line')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Do not ask before destructive actions (required when stdin is not a terminal)')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Do not ask before destructive actions (required when stdin is not a terminal)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('add', 'add', [CompletionResultType]::ParameterValue, 'Register an identity provider from its metadata for one or more e-mail domains')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List providers: entity ID, domains, certificate expiry, last login')
            [CompletionResult]::new('show', 'show', [CompletionResultType]::ParameterValue, 'Show one provider, with what the IdP admin needs (our entity ID and ACS URL)')
            [CompletionResult]::new('update', 'update', [CompletionResultType]::ParameterValue, 'Change a provider: new metadata (certificate rollover), domains, attributes, mapping')
            [CompletionResult]::new('remove', 'remove', [CompletionResultType]::ParameterValue, 'Remove a provider and its domains (users and their roles stay). Asks first')
            [CompletionResult]::new('metadata', 'metadata', [CompletionResultType]::ParameterValue, 'Print our SP metadata for a provider, for the IdP administrator')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'authctl;saml;add' {
            [CompletionResult]::new('--metadata-file', '--metadata-file', [CompletionResultType]::ParameterName, 'The IdP''s metadata XML file')
            [CompletionResult]::new('--metadata-url', '--metadata-url', [CompletionResultType]::ParameterName, 'The IdP''s metadata URL (fetched once, now)')
            [CompletionResult]::new('--domain', '--domain', [CompletionResultType]::ParameterName, 'An e-mail domain this provider serves (repeat for several)')
            [CompletionResult]::new('--email-attribute', '--email-attribute', [CompletionResultType]::ParameterName, 'The attribute holding the e-mail address (default: email, mail, the OID or the claims URI; else the NameID)')
            [CompletionResult]::new('--name-attribute', '--name-attribute', [CompletionResultType]::ParameterName, 'The attribute holding the display name (default: name, displayName, cn, ...)')
            [CompletionResult]::new('--groups-attribute', '--groups-attribute', [CompletionResultType]::ParameterName, 'The multi-valued attribute holding group names (default: groups, memberOf, ...)')
            [CompletionResult]::new('--map-group', '--map-group', [CompletionResultType]::ParameterName, 'Give members of GROUP the role ROLE (repeat for several)')
            [CompletionResult]::new('--default-role', '--default-role', [CompletionResultType]::ParameterName, 'A role every user of this provider gets')
            [CompletionResult]::new('--link-policy', '--link-policy', [CompletionResultType]::ParameterName, 'Whether an existing account with the same, verified address may be linked')
            [CompletionResult]::new('--trust-idp-mfa', '--trust-idp-mfa', [CompletionResultType]::ParameterName, 'Trust this IdP''s multi-factor sign-in when the assertion''s AuthnContextClassRef is CLASSREF (repeat for several): accounts with an authenticator app then skip its code. Without it they are asked for their code after SSO')
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)')
            [CompletionResult]::new('--no-headers', '--no-headers', [CompletionResultType]::ParameterName, 'Print tables without their header line')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Do not ask before destructive actions (required when stdin is not a terminal)')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Do not ask before destructive actions (required when stdin is not a terminal)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'authctl;saml;list' {
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)')
            [CompletionResult]::new('--no-headers', '--no-headers', [CompletionResultType]::ParameterName, 'Print tables without their header line')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Do not ask before destructive actions (required when stdin is not a terminal)')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Do not ask before destructive actions (required when stdin is not a terminal)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'authctl;saml;show' {
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)')
            [CompletionResult]::new('--no-headers', '--no-headers', [CompletionResultType]::ParameterName, 'Print tables without their header line')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Do not ask before destructive actions (required when stdin is not a terminal)')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Do not ask before destructive actions (required when stdin is not a terminal)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'authctl;saml;update' {
            [CompletionResult]::new('--metadata-file', '--metadata-file', [CompletionResultType]::ParameterName, 'The IdP''s metadata XML file')
            [CompletionResult]::new('--metadata-url', '--metadata-url', [CompletionResultType]::ParameterName, 'The IdP''s metadata URL (fetched once, now)')
            [CompletionResult]::new('--domain', '--domain', [CompletionResultType]::ParameterName, 'Replace the domain list (repeat for several)')
            [CompletionResult]::new('--email-attribute', '--email-attribute', [CompletionResultType]::ParameterName, 'The attribute holding the e-mail address (default: email, mail, the OID or the claims URI; else the NameID)')
            [CompletionResult]::new('--name-attribute', '--name-attribute', [CompletionResultType]::ParameterName, 'The attribute holding the display name (default: name, displayName, cn, ...)')
            [CompletionResult]::new('--groups-attribute', '--groups-attribute', [CompletionResultType]::ParameterName, 'The multi-valued attribute holding group names (default: groups, memberOf, ...)')
            [CompletionResult]::new('--map-group', '--map-group', [CompletionResultType]::ParameterName, 'Replace the group mapping (repeat for several)')
            [CompletionResult]::new('--default-role', '--default-role', [CompletionResultType]::ParameterName, 'default-role')
            [CompletionResult]::new('--link-policy', '--link-policy', [CompletionResultType]::ParameterName, 'link-policy')
            [CompletionResult]::new('--remove-certificate', '--remove-certificate', [CompletionResultType]::ParameterName, 'Stop accepting the signing certificate with this SHA-256 fingerprint (8+ hex digits)')
            [CompletionResult]::new('--trust-idp-mfa', '--trust-idp-mfa', [CompletionResultType]::ParameterName, 'Replace the AuthnContextClassRef values trusted as multi-factor (repeat for several)')
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)')
            [CompletionResult]::new('--clear-group-map', '--clear-group-map', [CompletionResultType]::ParameterName, 'Remove every group mapping')
            [CompletionResult]::new('--no-default-role', '--no-default-role', [CompletionResultType]::ParameterName, 'Stop giving a default role')
            [CompletionResult]::new('--no-trust-idp-mfa', '--no-trust-idp-mfa', [CompletionResultType]::ParameterName, 'Trust no multi-factor claim of this IdP: authenticator-app accounts give their code')
            [CompletionResult]::new('--no-headers', '--no-headers', [CompletionResultType]::ParameterName, 'Print tables without their header line')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Do not ask before destructive actions (required when stdin is not a terminal)')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Do not ask before destructive actions (required when stdin is not a terminal)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'authctl;saml;remove' {
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)')
            [CompletionResult]::new('--no-headers', '--no-headers', [CompletionResultType]::ParameterName, 'Print tables without their header line')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Do not ask before destructive actions (required when stdin is not a terminal)')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Do not ask before destructive actions (required when stdin is not a terminal)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'authctl;saml;metadata' {
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)')
            [CompletionResult]::new('--no-headers', '--no-headers', [CompletionResultType]::ParameterName, 'Print tables without their header line')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Do not ask before destructive actions (required when stdin is not a terminal)')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Do not ask before destructive actions (required when stdin is not a terminal)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'authctl;saml;help' {
            [CompletionResult]::new('add', 'add', [CompletionResultType]::ParameterValue, 'Register an identity provider from its metadata for one or more e-mail domains')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List providers: entity ID, domains, certificate expiry, last login')
            [CompletionResult]::new('show', 'show', [CompletionResultType]::ParameterValue, 'Show one provider, with what the IdP admin needs (our entity ID and ACS URL)')
            [CompletionResult]::new('update', 'update', [CompletionResultType]::ParameterValue, 'Change a provider: new metadata (certificate rollover), domains, attributes, mapping')
            [CompletionResult]::new('remove', 'remove', [CompletionResultType]::ParameterValue, 'Remove a provider and its domains (users and their roles stay). Asks first')
            [CompletionResult]::new('metadata', 'metadata', [CompletionResultType]::ParameterValue, 'Print our SP metadata for a provider, for the IdP administrator')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'authctl;saml;help;add' {
            break
        }
        'authctl;saml;help;list' {
            break
        }
        'authctl;saml;help;show' {
            break
        }
        'authctl;saml;help;update' {
            break
        }
        'authctl;saml;help;remove' {
            break
        }
        'authctl;saml;help;metadata' {
            break
        }
        'authctl;saml;help;help' {
            break
        }
        'authctl;completions' {
            [CompletionResult]::new('--dir', '--dir', [CompletionResultType]::ParameterName, 'Write the completions of every supported shell into this folder (it must exist)')
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)')
            [CompletionResult]::new('--no-headers', '--no-headers', [CompletionResultType]::ParameterName, 'Print tables without their header line')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Do not ask before destructive actions (required when stdin is not a terminal)')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Do not ask before destructive actions (required when stdin is not a terminal)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'authctl;status' {
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'Database URL: sqlite://PATH (relative to state_dir) or postgres://user:pass@host/db')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'A TOML configuration file (default: ~/.config/authctl/authctl.toml, then /etc/authctl/authctl.toml, the first that exists)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format: a table, the table with extra columns, or JSON (docs/cli-json.md)')
            [CompletionResult]::new('--no-headers', '--no-headers', [CompletionResultType]::ParameterName, 'Print tables without their header line')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Do not ask before destructive actions (required when stdin is not a terminal)')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Do not ask before destructive actions (required when stdin is not a terminal)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'authctl;help' {
            [CompletionResult]::new('serve', 'serve', [CompletionResultType]::ParameterValue, 'Run the HTTP service (applies pending migrations first)')
            [CompletionResult]::new('migrate', 'migrate', [CompletionResultType]::ParameterValue, 'Show or apply database migrations')
            [CompletionResult]::new('users', 'users', [CompletionResultType]::ParameterValue, 'List, inspect, create, verify, disable and enable accounts')
            [CompletionResult]::new('sessions', 'sessions', [CompletionResultType]::ParameterValue, 'List and revoke users'' sessions; prune ended ones')
            [CompletionResult]::new('verification', 'verification', [CompletionResultType]::ParameterValue, 'Email verification')
            [CompletionResult]::new('apikeys', 'apikeys', [CompletionResultType]::ParameterValue, 'List and revoke users'' API keys')
            [CompletionResult]::new('passkeys', 'passkeys', [CompletionResultType]::ParameterValue, 'List and remove users'' passkeys')
            [CompletionResult]::new('scim', 'scim', [CompletionResultType]::ParameterValue, 'The bearer tokens of SAML providers'' SCIM clients')
            [CompletionResult]::new('mail', 'mail', [CompletionResultType]::ParameterValue, 'The mail outbox: deliver queued mail now, or see how much waits')
            [CompletionResult]::new('deletion', 'deletion', [CompletionResultType]::ParameterValue, 'Scheduled account deletions and the hard-delete sweep')
            [CompletionResult]::new('audit', 'audit', [CompletionResultType]::ParameterValue, 'Read the audit log')
            [CompletionResult]::new('saml', 'saml', [CompletionResultType]::ParameterValue, 'SAML single sign-on: register identity providers for e-mail domains')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print shell completions, or write every shell''s file into a folder')
            [CompletionResult]::new('status', 'status', [CompletionResultType]::ParameterValue, 'Which configuration, database, server key and public URL commands here use, and whether the database is reachable and current (exit code 1 when not)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'authctl;help;serve' {
            break
        }
        'authctl;help;migrate' {
            [CompletionResult]::new('status', 'status', [CompletionResultType]::ParameterValue, 'Show which migrations are applied (the default)')
            [CompletionResult]::new('up', 'up', [CompletionResultType]::ParameterValue, 'Apply every pending migration')
            break
        }
        'authctl;help;migrate;status' {
            break
        }
        'authctl;help;migrate;up' {
            break
        }
        'authctl;help;users' {
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List accounts, oldest first')
            [CompletionResult]::new('show', 'show', [CompletionResultType]::ParameterValue, 'Show one account, by address or by id')
            [CompletionResult]::new('create', 'create', [CompletionResultType]::ParameterValue, 'Create an account. Prompts for a password on a terminal')
            [CompletionResult]::new('verify', 'verify', [CompletionResultType]::ParameterValue, 'Mark an address as verified without a link')
            [CompletionResult]::new('disable', 'disable', [CompletionResultType]::ParameterValue, 'Disable an account; its sessions end at once. Asks first (or pass --yes)')
            [CompletionResult]::new('enable', 'enable', [CompletionResultType]::ParameterValue, 'Enable a disabled account')
            [CompletionResult]::new('history', 'history', [CompletionResultType]::ParameterValue, 'Show an account''s login history, newest first')
            break
        }
        'authctl;help;users;list' {
            break
        }
        'authctl;help;users;show' {
            break
        }
        'authctl;help;users;create' {
            break
        }
        'authctl;help;users;verify' {
            break
        }
        'authctl;help;users;disable' {
            break
        }
        'authctl;help;users;enable' {
            break
        }
        'authctl;help;users;history' {
            break
        }
        'authctl;help;sessions' {
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List an account''s live sessions, newest first')
            [CompletionResult]::new('revoke', 'revoke', [CompletionResultType]::ParameterValue, 'Revoke one session by id, or every session of a user (`--user EMAIL --all`, asks first)')
            [CompletionResult]::new('prune', 'prune', [CompletionResultType]::ParameterValue, 'Delete ended sessions, spent verification tokens and stale throttle rows now')
            break
        }
        'authctl;help;sessions;list' {
            break
        }
        'authctl;help;sessions;revoke' {
            break
        }
        'authctl;help;sessions;prune' {
            break
        }
        'authctl;help;verification' {
            [CompletionResult]::new('resend', 'resend', [CompletionResultType]::ParameterValue, 'Send a new verification link to an unverified account')
            break
        }
        'authctl;help;verification;resend' {
            break
        }
        'authctl;help;apikeys' {
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List an account''s API keys, newest first (never the secrets)')
            [CompletionResult]::new('revoke', 'revoke', [CompletionResultType]::ParameterValue, 'Revoke an API key by id; it fails on its very next request')
            break
        }
        'authctl;help;apikeys;list' {
            break
        }
        'authctl;help;apikeys;revoke' {
            break
        }
        'authctl;help;passkeys' {
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List an account''s passkeys, newest first (never the public keys)')
            [CompletionResult]::new('remove', 'remove', [CompletionResultType]::ParameterValue, 'Remove a passkey by id: it fails at its very next use, and its owner is mailed')
            break
        }
        'authctl;help;passkeys;list' {
            break
        }
        'authctl;help;passkeys;remove' {
            break
        }
        'authctl;help;scim' {
            [CompletionResult]::new('tokens', 'tokens', [CompletionResultType]::ParameterValue, 'Make, list and revoke the bearer tokens a provider''s IdP provisions users with')
            break
        }
        'authctl;help;scim;tokens' {
            [CompletionResult]::new('create', 'create', [CompletionResultType]::ParameterValue, 'Make a token for a provider''s SCIM client. The token is written to a new file (mode 600), never to stdout: paste it into the IdP, then delete the file')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List SCIM tokens (never the secrets), newest first')
            [CompletionResult]::new('revoke', 'revoke', [CompletionResultType]::ParameterValue, 'Revoke a SCIM token by id; its next request gets 401')
            break
        }
        'authctl;help;scim;tokens;create' {
            break
        }
        'authctl;help;scim;tokens;list' {
            break
        }
        'authctl;help;scim;tokens;revoke' {
            break
        }
        'authctl;help;mail' {
            [CompletionResult]::new('deliver', 'deliver', [CompletionResultType]::ParameterValue, 'Deliver every queued mail that is due now, over the configured transport')
            [CompletionResult]::new('status', 'status', [CompletionResultType]::ParameterValue, 'How many mails wait in the outbox, and how many were given up')
            break
        }
        'authctl;help;mail;deliver' {
            break
        }
        'authctl;help;mail;status' {
            break
        }
        'authctl;help;deletion' {
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'Accounts waiting for deletion, soonest first, with their dates')
            [CompletionResult]::new('schedule', 'schedule', [CompletionResultType]::ParameterValue, 'Schedule an account for deletion (its sessions and API keys end at once). Asks first')
            [CompletionResult]::new('cancel', 'cancel', [CompletionResultType]::ParameterValue, 'Cancel a scheduled deletion')
            [CompletionResult]::new('sweep', 'sweep', [CompletionResultType]::ParameterValue, 'Hard-delete every account whose grace period has passed. Safe to run from cron and on several machines at once')
            [CompletionResult]::new('events', 'events', [CompletionResultType]::ParameterValue, 'The outbox of `user.deleted` events for downstream systems, newest first, with their webhook delivery')
            break
        }
        'authctl;help;deletion;list' {
            break
        }
        'authctl;help;deletion;schedule' {
            break
        }
        'authctl;help;deletion;cancel' {
            break
        }
        'authctl;help;deletion;sweep' {
            break
        }
        'authctl;help;deletion;events' {
            break
        }
        'authctl;help;audit' {
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List audit events, newest first, with the account''s address while it exists')
            break
        }
        'authctl;help;audit;list' {
            break
        }
        'authctl;help;saml' {
            [CompletionResult]::new('add', 'add', [CompletionResultType]::ParameterValue, 'Register an identity provider from its metadata for one or more e-mail domains')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List providers: entity ID, domains, certificate expiry, last login')
            [CompletionResult]::new('show', 'show', [CompletionResultType]::ParameterValue, 'Show one provider, with what the IdP admin needs (our entity ID and ACS URL)')
            [CompletionResult]::new('update', 'update', [CompletionResultType]::ParameterValue, 'Change a provider: new metadata (certificate rollover), domains, attributes, mapping')
            [CompletionResult]::new('remove', 'remove', [CompletionResultType]::ParameterValue, 'Remove a provider and its domains (users and their roles stay). Asks first')
            [CompletionResult]::new('metadata', 'metadata', [CompletionResultType]::ParameterValue, 'Print our SP metadata for a provider, for the IdP administrator')
            break
        }
        'authctl;help;saml;add' {
            break
        }
        'authctl;help;saml;list' {
            break
        }
        'authctl;help;saml;show' {
            break
        }
        'authctl;help;saml;update' {
            break
        }
        'authctl;help;saml;remove' {
            break
        }
        'authctl;help;saml;metadata' {
            break
        }
        'authctl;help;completions' {
            break
        }
        'authctl;help;status' {
            break
        }
        'authctl;help;help' {
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
