# bash completion for plash: commands, options, macros, image ids and names. The
# words come from `plash complete`, so they follow the installed plash.

_plash() {
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
    local plash=${COMP_WORDS[0]} command=${COMP_WORDS[1]} words
    COMPREPLY=()
    if [ "$COMP_CWORD" -eq 1 ]; then
        words="$("$plash" complete commands 2>/dev/null) --help --version"
    else
        case $prev in
            --from|-f|--image|--from-map|--from-id) words=$("$plash" complete images 2>/dev/null) ;;
            *)
                case $command in
                    build|run)
                        if [[ $cur == -* ]]; then
                            words="$("$plash" complete options "$command" 2>/dev/null) $("$plash" complete macros 2>/dev/null)"
                        elif [ "$command" = run ]; then
                            words=$("$plash" complete images 2>/dev/null)
                        fi ;;
                    rm|nodepath|parent|inspect|map|mount|export-tar|kill)
                        if [[ $cur == -* ]]; then words=$("$plash" complete options "$command" 2>/dev/null)
                        else words=$("$plash" complete images 2>/dev/null); fi ;;
                    help) words="macros $("$plash" complete commands 2>/dev/null)" ;;
                    complete) words="commands macros images options" ;;
                    *) [[ $cur == -* ]] && words=$("$plash" complete options "$command" 2>/dev/null) ;;
                esac ;;
        esac
    fi
    # Nothing to offer (a file, a directory, a command inside): bash's own completion.
    [ -n "$words" ] && COMPREPLY=($(compgen -W "$words" -- "$cur"))
    return 0
}
complete -o default -F _plash plash
