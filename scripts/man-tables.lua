-- pandoc filter for scripts/man: a table becomes a list of terms, as man pages show
-- options (.TP), since a table of long cells does not fit 80 columns.
-- Each row: its first cells are the term (a macro and its arguments), the last cell
-- the text; a table whose columns all have headings past the first (modes side by
-- side) gives each of those cells a paragraph of its own, led by its heading.
local stringify = pandoc.utils.stringify

local function inlines(cell) return pandoc.utils.blocks_to_inlines(cell.contents) end

function Table(tbl)
  local headings = {}
  for i, cell in ipairs(tbl.head.rows[1].cells) do headings[i] = stringify(cell.contents) end
  local labelled = #headings >= 4
  for i = 2, #headings do if headings[i] == "" then labelled = false end end
  local items = {}
  for _, body in ipairs(tbl.bodies) do
    for _, row in ipairs(body.body) do
      local cells = row.cells
      local term, text = pandoc.List(inlines(cells[1])), {}
      if labelled then
        for i = 2, #cells do
          local para = pandoc.List({pandoc.Strong(headings[i] .. ":"), pandoc.Space()})
          para:extend(inlines(cells[i]))
          table.insert(text, pandoc.Para(para))
        end
      else
        for i = 2, #cells - 1 do
          if #cells[i].contents > 0 then
            term:insert(pandoc.Space())
            term:extend(inlines(cells[i]))
          end
        end
        text = cells[#cells].contents
      end
      table.insert(items, {term, {text}})
    end
  end
  return pandoc.DefinitionList(items)
end
