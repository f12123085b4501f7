-- ArgoCD health check for parallelsynth.io/SynthDataset, computed from the status the
-- operator writes (the operator never writes the spec, so the dataset stays Synced):
--   being deleted                                 -> Progressing (the operator cleans up; data stays)
--   no status yet, or status older than the spec  -> Progressing
--   condition SpecValid=False                     -> Degraded, with the condition's message
--   phase Succeeded                               -> Healthy
--   phase Failed or Degraded                      -> Degraded
--   phase Suspended                               -> Suspended
--   anything else (Pending, Running)              -> Progressing
local hs = {}
local status = obj.status

local function condition(conds, ctype)
  if conds == nil then return nil end
  for _, c in ipairs(conds) do
    if c.type == ctype then return c end
  end
  return nil
end

local function progress(st)
  local msg = st.phase or "Pending"
  if st.samples ~= nil and st.samples.target ~= nil and st.samples.target > 0 then
    msg = msg .. ": " .. string.format("%d/%d samples", st.samples.completed or 0, st.samples.target)
    if st.progress ~= nil then msg = msg .. " (" .. st.progress .. ")" end
  end
  if st.eta ~= nil then msg = msg .. ", ETA " .. st.eta end
  return msg
end

if obj.metadata ~= nil and obj.metadata.deletionTimestamp ~= nil then
  hs.status = "Progressing"
  hs.message = "Deleting: the operator removes its RenderBatches and Jobs (the rendered data stays)"
  return hs
end

if status == nil or status.phase == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the parallel-synth operator"
  return hs
end

local generation = obj.metadata and obj.metadata.generation
if generation ~= nil and status.observedGeneration ~= nil and status.observedGeneration < generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. generation
  return hs
end

local spec_valid = condition(status.conditions, "SpecValid")
if spec_valid ~= nil and spec_valid.status == "False" then
  hs.status = "Degraded"
  hs.message = "Invalid spec: " .. (spec_valid.message or spec_valid.reason or "")
  return hs
end

local phase = status.phase
if phase == "Succeeded" then
  hs.status = "Healthy"
  hs.message = progress(status)
elseif phase == "Failed" or phase == "Degraded" then
  hs.status = "Degraded"
  local c = condition(status.conditions, "Degraded")
  if c == nil or c.status ~= "True" then c = condition(status.conditions, "BudgetExceeded") end
  if c ~= nil and c.status == "True" and c.message ~= nil and c.message ~= "" then
    hs.message = phase .. ": " .. c.message
  else
    hs.message = progress(status)
  end
elseif phase == "Suspended" then
  hs.status = "Suspended"
  hs.message = progress(status)
else
  hs.status = "Progressing"
  hs.message = progress(status)
end
return hs
