# fish completion for plash: commands, options, macros, image ids and names. The words
# come from `plash complete`, so they follow the installed plash.

function __plash_words
    plash complete $argv 2>/dev/null
end

function __plash_command
    set -l words (commandline -opc)
    echo $words[2]
end

complete -c plash -f -n __fish_use_subcommand -a '(__plash_words commands)'
complete -c plash -f -n 'not __fish_use_subcommand; and string match -q -- "-*" (commandline -ct)' \
    -a '(__plash_words options (__plash_command))'
complete -c plash -f -n '__fish_seen_subcommand_from build run; and string match -q -- "-*" (commandline -ct)' \
    -a '(__plash_words macros)'
complete -c plash -f -n '__fish_seen_subcommand_from run rm nodepath parent inspect map mount export-tar kill' \
    -a '(__plash_words images)'
complete -c plash -f -n '__fish_seen_subcommand_from build run; and __fish_prev_arg_in --from -f --image --from-map --from-id' \
    -a '(__plash_words images)'
complete -c plash -f -n '__fish_seen_subcommand_from help' -a 'macros (__plash_words commands)'
